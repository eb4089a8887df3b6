"""Stage embed: the run's model + evaluation manifests -> embeddings/<run>/embeddings.pt (L2-normalised)."""

from dmlbench.identity import prepared_dir
from dmlbench.pipeline import experiment, stage
from dmlbench.pipeline.run_name import run_of
from dmlbench.pipeline.steps import embed_run


def main() -> None:
    xp = experiment.load()
    prepared = prepared_dir(xp.experiment.dataset, xp.experiment.crop)
    run = run_of(xp, prepared)
    splits = embed_run(xp, run, run.paths, prepared)
    shapes = ", ".join(f"{name} {tuple(s['embeddings'].shape)}" for name, s in splits.items())
    print(f"embed: {run.name}: {shapes} -> {run.paths.embeddings}")


if __name__ == "__main__":
    stage.run(main)
