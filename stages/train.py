"""Stage train: prepared train split -> models/model.pt, with per-epoch DVCLive logs in dvclive/."""

import os
import time
from pathlib import Path

from dmlbench import stage
from dmlbench.config import section
from dmlbench.sections import TrainConfig
from dmlbench.reporting.figures import plot_training
from dmlbench.training.launch import torchrun, under_torchrun
from dmlbench.training.loop import train

MODEL = Path("models/model.pt")
LIVE = Path("dvclive")
FIGURE = Path("plots/training.png")
CHECKPOINT = Path("checkpoints/train.pt")  # persist: true in dvc.yaml, so a rerun resumes from it


def main(params: dict) -> None:
    exp = stage.experiment(params)
    method, cfg = stage.method_config(params, exp)
    tcfg = section(params, "train", TrainConfig)
    if tcfg.nproc > 1 and not under_torchrun():
        torchrun(__file__, tcfg.nproc)  # each process runs this script again, under torchrun
        return
    start = time.perf_counter()
    history = train(exp, method, cfg, tcfg, stage.prepared_dir(exp), MODEL, LIVE, CHECKPOINT)
    if os.environ.get("RANK", "0") != "0":  # under torchrun rank 0 alone writes
        return
    plot_training(history, FIGURE, exp.run_id)
    print(f"train: {exp.run_id}, {len(history)} epochs, {time.perf_counter() - start:.0f} s -> {MODEL}")


if __name__ == "__main__":
    stage.run(main)
