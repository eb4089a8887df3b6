"""The train step of one run, as the train stage and the grid's cell stage both do it: relaunch under torchrun
when train.nproc > 1, train (resuming a matching checkpoint), and let rank 0 alone plot the training curves."""

import time
from dataclasses import dataclass
from pathlib import Path

from dmlbench.identity import Run, RunPaths
from dmlbench.params.experiment import ExperimentParams
from dmlbench.reporting.figures import plot_training
from dmlbench.training.launch import torchrun, under_torchrun
from dmlbench.training.loop import TrainJob, train


@dataclass(frozen=True)
class TrainPlace:
    """Where one run's training reads (the prepared folder) and writes (its paths, DVCLive logs, the figure)."""

    prepared: Path
    paths: RunPaths
    live: Path
    figure: Path


def train_run(xp: ExperimentParams, run: Run, place: TrainPlace, command: list[str]) -> list[dict] | None:
    """Train ``run``; returns its history in the process that reports it (a single process, or torchrun's rank 0),
    None elsewhere. With train.nproc > 1 outside torchrun, ``command`` (the stage script and its arguments) is run
    again as torchrun's ranks, and this process waits for them."""
    if xp.train.nproc > 1 and not under_torchrun():
        torchrun(command[0], xp.train.nproc, command[1:])
        return None
    start = time.perf_counter()
    job = TrainJob(run, xp.method, xp.config, xp.train, place.prepared, place.paths.model, place.live,
                   place.paths.checkpoint)
    history = train(job)
    if history is None:  # a rank other than 0: rank 0 alone writes
        return None
    plot_training(history, place.figure, run.name)
    print(f"train: {run.name}, {len(history)} epochs, {time.perf_counter() - start:.0f} s -> {place.paths.model}")
    return history
