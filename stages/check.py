"""Stage check: validate all of params.yaml before any other stage runs or any output is removed."""

from pathlib import Path

from dmlbench import atomic
from dmlbench.pipeline import experiment, stage

# The same bytes whenever params are valid: the stages after it never rerun because of it (dvc.yaml).
OUT = Path("params.checked")


def main() -> None:
    xp = experiment.load()
    atomic.write_text(OUT, "params.yaml passed dmlbench's checks\n")
    e = xp.experiment  # the run's name waits for prepare: the prepared data's digest is part of it
    print(f"check: params.yaml valid; current experiment {e.method} ({xp.variant}) {e.backbone} on {e.dataset} "
          f"{e.crop}, {e.recipe} recipe, seed {e.seed}")


if __name__ == "__main__":
    stage.run(main)
