"""Grid stage cell@<cell>: train, embed and evaluate one cell of the seeds' grid with its recipe's params.

Files: benchmarks/runs/<cell>/ (model, provenance, checkpoint, embeddings, training logs) and
benchmarks/metrics/<cell>.json (what the grid's tables read).
"""

import sys

from dmlbench.grid import GRID_PREPARED, GRID_RUNS, cell_paths, load_cell
from dmlbench.pipeline import experiment, stage
from dmlbench.pipeline.run_name import run_of
from dmlbench.pipeline.steps import embed_run, evaluate_run
from dmlbench.pipeline.train import TrainPlace, train_run
from dmlbench.training.launch import under_torchrun


def main() -> None:
    name = sys.argv[1]
    params, cell = load_cell(name)
    xp = experiment.load_experiment(params)
    prepared, paths = GRID_PREPARED / cell["data"], cell_paths(name)
    experiment.check_ks_fit(xp, prepared)
    run = run_of(xp, prepared)
    train_run(xp, run, TrainPlace(prepared, paths, GRID_RUNS / name / "live", GRID_RUNS / name / "training.png"),
              [__file__, name])
    if under_torchrun():  # a rank of the training: the process that launched them embeds and evaluates
        return
    embed_run(xp, run, paths, prepared)
    result = evaluate_run(xp, run, paths)
    shown = " ".join(f"{k}={v:.4f}" for k, v in result["metrics"].items() if not isinstance(v, dict))
    print(f"grid cell {name} ({run.name}): {shown}")


if __name__ == "__main__":
    stage.run(main)
