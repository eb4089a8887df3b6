"""Stage train: prepared train split -> models/<run>/model.pt, checkpoints/<run>/, DVCLive logs in dvclive/."""

import os
import time

from dmlbench import stage
from dmlbench.config import section
from dmlbench.identity import LIVE_DIR, TRAINING_FIGURE, prepared_dir
from dmlbench.reporting.figures import plot_training
from dmlbench.sections import TrainConfig
from dmlbench.stage_params import check_ks_fit, checked_run
from dmlbench.training.launch import torchrun, under_torchrun
from dmlbench.training.loop import train


def main(params: dict) -> None:
    # The whole file first, so a bad evaluate or embed param stops before hours of training.
    exp, method, cfg, run = checked_run(params)
    tcfg = section(params, "train", TrainConfig)
    prepared = prepared_dir(exp.dataset, exp.crop)
    check_ks_fit(params, exp.dataset, prepared)
    if tcfg.nproc > 1 and not under_torchrun():
        torchrun(__file__, tcfg.nproc)  # each process runs this script again, under torchrun
        return
    start = time.perf_counter()
    history = train(run, method, cfg, tcfg, prepared, run.paths.model, LIVE_DIR, run.paths.checkpoint)
    if os.environ.get("RANK", "0") != "0":  # under torchrun rank 0 alone writes
        return
    plot_training(history, TRAINING_FIGURE, run.name)
    print(f"train: {run.name}, {len(history)} epochs, {time.perf_counter() - start:.0f} s -> {run.paths.model}")


if __name__ == "__main__":
    stage.run(main)
