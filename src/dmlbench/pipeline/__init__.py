"""What the stage scripts share: the stage runner and its one error handler, params.yaml -> ExperimentParams,
the run's name, the one prepare entry, and the train, embed and evaluate steps of a run."""
