"""python -m dmlbench.demo_rows [--only ROW ...]: the README's demo rows (benchmarks/demo_rows.yaml) by dvc repro."""

import argparse
from pathlib import Path

from dmlbench.demo_rows import ROWS_FILE, run_rows
from dmlbench.pipeline.stage import run


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m dmlbench.demo_rows", description=__doc__)
    parser.add_argument("--only", nargs="+", default=[], metavar="ROW", help="these rows only (names in the file)")
    parser.add_argument("--rows", type=Path, default=ROWS_FILE, help=f"the rows file (default {ROWS_FILE})")
    args = parser.parse_args()
    run_rows(args.only, args.rows)


if __name__ == "__main__":
    run(main)
