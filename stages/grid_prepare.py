"""Grid stage prepare@<data>: a raw dataset -> benchmarks/prepared/<data>/ with the grid's prepare settings."""

import sys
from pathlib import Path

from dmlbench import stage
from dmlbench.config import build
from dmlbench.prepare_folder import prepare_folder
from dmlbench.grid import GRID_PREPARED, read_grid
from dmlbench.sections import PrepareConfig


def main(_: dict) -> None:
    key = sys.argv[1]
    entry = read_grid()["datasets"][key]
    out = GRID_PREPARED / key
    summary = prepare_folder(entry["dataset"], entry["crop"], Path(entry["raw"]), out,
                             build(PrepareConfig, entry["prepare"], "prepare"))
    print(f"grid prepare: {entry['raw']} -> {out}: {summary}")


if __name__ == "__main__":
    stage.run(main, load=lambda: {})
