"""Grid stage cell@<cell>: train, embed and evaluate one cell of the seeds' grid with its recipe's params.

Files: benchmarks/runs/<cell>/ (model, provenance, checkpoint, embeddings, training logs) and
benchmarks/metrics/<cell>.json (what the grid's tables read).
"""

import os
import sys

from dmlbench import stage
from dmlbench.config import section
from dmlbench.grid import GRID_PREPARED, GRID_RUNS, cell_paths, load_cell
from dmlbench.reporting.figures import plot_training
from dmlbench.run_steps import embed_run, evaluate_run
from dmlbench.sections import TrainConfig
from dmlbench.stage_params import check_ks_fit, checked_run
from dmlbench.training.launch import torchrun, under_torchrun
from dmlbench.training.loop import train


def main(_: dict) -> None:
    name = sys.argv[1]
    params, cell = load_cell(name)
    exp, method, cfg, run = checked_run(params)
    tcfg = section(params, "train", TrainConfig)
    prepared = GRID_PREPARED / cell["data"]
    paths = cell_paths(name)
    check_ks_fit(params, exp.dataset, prepared)
    if tcfg.nproc > 1 and not under_torchrun():
        torchrun(__file__, tcfg.nproc, [name])  # the ranks train; this process then embeds and evaluates
    else:
        history = train(run, method, cfg, tcfg, prepared, paths.model, GRID_RUNS / name / "live", paths.checkpoint)
        if os.environ.get("RANK", "0") == "0":
            plot_training(history, GRID_RUNS / name / "training.png", run.name)
        if under_torchrun():
            return
    embed_run(params, method, cfg, run, paths, prepared)
    result, _ = evaluate_run(params, method, cfg, run, paths)
    shown = " ".join(f"{k}={v:.4f}" for k, v in result["metrics"].items() if not isinstance(v, dict))
    print(f"grid cell {name} ({run.name}): {shown}")


if __name__ == "__main__":
    stage.run(main, load=lambda: {})
