"""One training's inputs (TrainJob) and the state its epochs read and advance (EpochState), with the SIGTERM flag."""

import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from dmlbench.data.sampler import SeededBatches
from dmlbench.identity import Run
from dmlbench.methods import Method
from dmlbench.methods.optimization import Optimization
from dmlbench.params.sections import TrainConfig
from dmlbench.training.checkpoint import Progress, save_checkpoint, save_elapsed
from dmlbench.training.distributed import Distributed
from dmlbench.training.selection import Selector
from dmlbench.training.step import TrainStep


@dataclass(frozen=True)
class TrainJob:
    """One training: the run, its method and section, train's params, the prepared folder and where it writes."""

    run: Run
    method: Method
    config: Any  # the method's validated section
    train: TrainConfig
    prepared: Path
    model_path: Path
    live_dir: Path
    checkpoint_path: Path


class StopRequest:
    """Turns SIGTERM (preemption, `kill`) into a flag the loop checks after each step."""

    def __init__(self):
        self.requested = False
        self.previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def restore(self) -> None:
        signal.signal(signal.SIGTERM, self.previous)


@dataclass
class EpochState:
    """What the epochs read and advance: the step, its batches, the schedule, where training stands, the selection;
    ``save`` checkpoints it (rank 0 writes, the others wait)."""

    job: TrainJob
    where: Distributed
    step: TrainStep
    loader: DataLoader
    batches: SeededBatches
    optimization: Optimization
    selector: Selector | None
    key: str
    progress: Progress = field(default_factory=Progress)
    carried: float = 0.0  # seconds the processes this one resumed from spent training
    start: float = field(default_factory=time.perf_counter)
    stop: StopRequest | None = None

    def elapsed(self) -> float:
        """This process's seconds and those of the processes it resumed from."""
        return self.carried + time.perf_counter() - self.start

    def save(self) -> None:
        """Rank 0 writes the checkpoint and the seconds spent so far; the others wait, so no rank runs ahead of a
        checkpoint it may resume from."""
        if self.where.is_main:
            path = self.job.checkpoint_path
            save_checkpoint(path, self.key, self.progress, self.step.model, self.optimization, self.step.scaler,
                            self.selector)
            save_elapsed(path, self.key, self.progress, self.elapsed())
        if self.where.world_size > 1:
            torch.distributed.barrier()
