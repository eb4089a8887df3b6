"""Grid stage prepare@<data>: a raw dataset -> benchmarks/prepared/<data>/ with the grid's prepare settings."""

import sys

from dmlbench import atomic, stage
from dmlbench.config import build
from dmlbench.data.prepare import prepare_dataset
from dmlbench.data.readers import read_dataset
from dmlbench.grid import GRID_PREPARED, read_grid
from dmlbench.sections import PrepareConfig


def main(params: dict) -> None:
    key = sys.argv[1]
    entry = read_grid()["datasets"][key]
    cfg = build(PrepareConfig, entry["prepare"], "prepare")
    out = GRID_PREPARED / key
    records = read_dataset(entry["dataset"], entry["raw"], check_counts=cfg.check_counts)
    summary = prepare_dataset(records, entry["raw"], out, entry["crop"] == "cropped", cfg.max_side, cfg.workers,
                              skip_corrupt=cfg.skip_corrupt, jpeg_quality=cfg.jpeg_quality)
    atomic.write_json(out / "summary.json", summary)
    print(f"grid prepare: {entry['raw']} -> {out}: {summary}")


if __name__ == "__main__":
    stage.run(main, load=lambda: {})
