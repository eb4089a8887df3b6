"""`dmlbench runs`: every run of the workspace (metrics/runs/) or of the grid (benchmarks/metrics/) as the runs frame
the tables are made from, printed or written as CSV."""

from pathlib import Path

import pandas as pd

from dmlbench.errors import DmlbenchError
from dmlbench.grid import GRID_METRICS
from dmlbench.identity import RUNS_DIR
from dmlbench.reporting.runs_frame import load_runs_frame, write_runs_csv

SHOWN = ["name", "stale", "recall@1", "recall@1.low", "recall@1.high", "map@r", "commit", "code_digest",
         "params_digest"]  # the printed summary; the CSV holds every column


def runs_table(root: Path, grid: bool, csv: Path | None) -> str:
    """The frame of ``root``'s runs: written to ``csv`` (the line saying so returned), or a summary to print."""
    folder = root / (GRID_METRICS if grid else RUNS_DIR)
    if not folder.is_dir():
        raise DmlbenchError(f"no {folder}: run dmlbench runs in a dmlbench workspace (or pass --root DIR)")
    frame = load_runs_frame(folder)
    if csv is not None:
        write_runs_csv(frame, csv)
        return f"runs: {len(frame)} run(s) of {folder}, {len(frame.columns)} columns -> {csv}"
    if frame.empty:
        return f"0 runs in {folder}"
    shown = frame[[c for c in SHOWN if c in frame.columns]].copy()
    shown["stale"] = shown["stale"].notna().map({True: "†", False: ""})
    with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 80):
        return f"{len(frame)} run(s) of {folder} (every column: --csv FILE)\n{shown.to_string(index=False)}"
