"""What a method's optimizer builder returns: the main phase, and an optional warm-up phase before it."""

import contextlib
from dataclasses import dataclass
from typing import Iterator

import torch


@dataclass
class Optimization:
    """The optimizer and per-epoch lr schedule, plus an optional warm-up optimizer for the first epochs.

    During warm-up only the warm-up optimizer's parameters get gradients (the rest of the model is frozen but
    stays in train mode, so BatchNorm statistics still update) and the main schedule does not step.
    """

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    warmup_optimizer: torch.optim.Optimizer | None = None
    warmup_epochs: int = 0

    def __post_init__(self) -> None:
        if (self.warmup_epochs > 0) != (self.warmup_optimizer is not None):
            raise ValueError("warmup_epochs > 0 needs a warmup_optimizer, and a warmup_optimizer needs epochs")

    def warming_up(self, epoch: int) -> bool:
        """Whether 0-based ``epoch`` belongs to the warm-up phase."""
        return epoch < self.warmup_epochs

    def optimizer_for(self, epoch: int) -> torch.optim.Optimizer:
        """The optimizer that steps during 0-based ``epoch``."""
        return self.warmup_optimizer if self.warming_up(epoch) else self.optimizer

    def end_epoch(self, epoch: int) -> None:
        """Step the main schedule after a main-phase epoch (warm-up epochs leave it untouched)."""
        if not self.warming_up(epoch):
            self.scheduler.step()

    def state_dict(self) -> dict:
        """Every stateful part, for the checkpoint."""
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "warmup_optimizer": self.warmup_optimizer.state_dict() if self.warmup_optimizer else None}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` saved."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.warmup_optimizer is not None:
            self.warmup_optimizer.load_state_dict(state["warmup_optimizer"])


@contextlib.contextmanager
def only_trainable(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> Iterator[None]:
    """Within the block, parameters outside ``optimizer`` get no gradient (backward stops early)."""
    stepped = {id(p) for group in optimizer.param_groups for p in group["params"]}
    frozen = [p for p in model.parameters() if p.requires_grad and id(p) not in stepped]
    for p in frozen:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in frozen:
            p.requires_grad_(True)
