"""python -m dmlbench.sweep write: draw each method's trials into sweeps/params.yaml (its `trials:` block)."""

import argparse

from dmlbench.pipeline.stage import run
from dmlbench.sweep import SWEEP_PARAMS, read_sweep, write_sweep


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m dmlbench.sweep", description=__doc__)
    parser.add_argument("command", choices=["write"], help="write: rewrite the trials block from budget, seed, spaces")
    parser.parse_args()
    write_sweep(SWEEP_PARAMS)
    sweep = read_sweep(SWEEP_PARAMS)
    print(f"sweep: {len(sweep['trials'])} trials ({sweep['budget']} per method, seed {sweep['seed']}) -> "
          f"{SWEEP_PARAMS}")


if __name__ == "__main__":
    run(main)
