"""Grid stage prepare@<data>: a raw dataset -> benchmarks/prepared/<data>/ with the grid's prepare settings."""

import sys
from pathlib import Path

from dmlbench.grid import GRID_PREPARED, read_grid
from dmlbench.params.load import build
from dmlbench.params.sections import PrepareConfig
from dmlbench.pipeline import stage
from dmlbench.pipeline.prepare import prepare_folder


def main() -> None:
    key = sys.argv[1]
    entry = read_grid()["datasets"][key]
    out = GRID_PREPARED / key
    summary = prepare_folder(entry["dataset"], entry["crop"], Path(entry["raw"]), out,
                             build(PrepareConfig, entry["prepare"], "prepare"))
    print(f"grid prepare: {entry['raw']} -> {out}: {summary}")


if __name__ == "__main__":
    stage.run(main)
