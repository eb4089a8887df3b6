"""Stage check: validate all of params.yaml before any other stage runs or any output is removed."""

from pathlib import Path

from dmlbench import atomic, stage
from dmlbench.stage_params import check_params

# The same bytes whenever params are valid: the stages after it never rerun because of it (dvc.yaml).
OUT = Path("params.checked")


def main(params: dict) -> None:
    run = check_params(params)
    atomic.write_text(OUT, "params.yaml passed dmlbench's checks\n")
    print(f"check: params.yaml valid; current run {run.name}")


if __name__ == "__main__":
    stage.run(main)
