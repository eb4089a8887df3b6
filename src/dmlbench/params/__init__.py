"""params.yaml -> validated frozen dataclasses: load.py reads and coerces, sections.py holds each stage's section,
experiment.py the one object a stage gets (built and cross-checked by dmlbench.pipeline.experiment)."""
