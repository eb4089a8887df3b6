"""Stage train: prepared train split -> models/model.pt, with per-epoch DVCLive logs in dvclive/."""

import time
from pathlib import Path

from dmlbench import stage
from dmlbench.config import section
from dmlbench.experiment import TrainConfig
from dmlbench.figures import plot_training
from dmlbench.training import train

MODEL = Path("models/model.pt")
LIVE = Path("dvclive")
FIGURE = Path("plots/training.png")
CHECKPOINT = Path("checkpoints/train.pt")  # persist: true in dvc.yaml, so a rerun resumes from it


def main(params: dict) -> None:
    exp = stage.experiment(params)
    method, cfg = stage.method_config(params, exp)
    tcfg = section(params, "train", TrainConfig)
    start = time.perf_counter()
    history = train(exp, method, cfg, tcfg, stage.prepared_dir(exp), MODEL, LIVE, CHECKPOINT)
    plot_training(history, FIGURE, exp.run_id)
    print(f"train: {exp.run_id}, {len(history)} epochs, {time.perf_counter() - start:.0f} s -> {MODEL}")


if __name__ == "__main__":
    stage.run(main)
