"""What a method's optimizer builder returns: the main phase, and the two shapes of warm-up the seeds use.

- A separate warm-up phase *before* the main epochs (NormSoftmax): its own optimizer over a subset of the
  parameters for ``warmup_epochs``; the main schedule does not step during it. Total epochs: warm-up + main.
- Frozen epochs *inside* the main phase (UnifiedProxy): the one optimizer and its schedule run through all the
  epochs, but during the first ``frozen_epochs`` only ``frozen_trainable`` parameters get gradients.

Parameter groups may carry their own learning rates (proxies at 100x the backbone's) and a "name" that the logs
use (``train/lr_<name>``).
"""

import contextlib
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import torch


@dataclass
class Optimization:
    """The optimizer and per-epoch lr schedule, with an optional warm-up phase or frozen epochs (module docstring).

    While a phase trains a subset, the other parameters get no gradient and are not stepped (not even by weight
    decay) but the model stays in train mode, so BatchNorm statistics still update unless the model froze them.
    """

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    warmup_optimizer: torch.optim.Optimizer | None = None
    warmup_epochs: int = 0
    frozen_epochs: int = 0
    frozen_trainable: list[torch.nn.Parameter] = field(default_factory=list)
    stop_patience: int = 0  # > 0: stop once this many epochs passed without a better selection score

    @property
    def needs_scores(self) -> bool:
        """Whether the schedule or the stopping rule reads the per-epoch selection score (train.select)."""
        return self.stop_patience > 0 or isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)

    def __post_init__(self) -> None:
        if (self.warmup_epochs > 0) != (self.warmup_optimizer is not None):
            raise ValueError("warmup_epochs > 0 needs a warmup_optimizer, and a warmup_optimizer needs epochs")
        if self.frozen_epochs > 0 and not self.frozen_trainable:
            raise ValueError("frozen_epochs > 0 needs the parameters that still train (frozen_trainable)")

    def total_epochs(self, main_epochs: int) -> int:
        """Epochs the loop runs: the warm-up phase (if any) plus the main phase."""
        return self.warmup_epochs + main_epochs

    def warming_up(self, epoch: int) -> bool:
        """Whether 0-based ``epoch`` belongs to the separate warm-up phase."""
        return epoch < self.warmup_epochs

    def optimizer_for(self, epoch: int) -> torch.optim.Optimizer:
        """The optimizer that steps during 0-based ``epoch``."""
        return self.warmup_optimizer if self.warming_up(epoch) else self.optimizer

    def trainable_for(self, epoch: int) -> list[torch.nn.Parameter] | None:
        """The only parameters that train during ``epoch``; None when every parameter of the optimizer does."""
        if self.warming_up(epoch):
            return _parameters(self.warmup_optimizer)
        if epoch - self.warmup_epochs < self.frozen_epochs:
            return list(self.frozen_trainable)
        return None

    def end_epoch(self, epoch: int, score: float | None = None) -> None:
        """Step the main schedule after a main-phase epoch (frozen epochs included; warm-up epochs not); a
        reduce-on-plateau schedule steps on ``score``, the epoch's selection score (train.select_metric)."""
        if self.warming_up(epoch):
            return
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(score)
        else:
            self.scheduler.step()

    def stop_early(self, epoch: int, best_epoch: int | None) -> bool:
        """Whether ``stop_patience`` epochs passed since the best one (``epoch``: epochs finished)."""
        return self.stop_patience > 0 and best_epoch is not None and epoch - best_epoch >= self.stop_patience

    def schedule(self, main_epochs: int) -> dict:
        """The epoch counts a table needs to label a run: total, separate warm-up, frozen-backbone epochs."""
        return {"epochs": self.total_epochs(main_epochs), "warmup_epochs": self.warmup_epochs,
                "frozen_epochs": self.frozen_epochs}

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


def learning_rates(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """{"lr": first group's lr, "lr_<name>": each other named group's} for the logs."""
    rates = {"lr": optimizer.param_groups[0]["lr"]}
    for group in optimizer.param_groups[1:]:
        if "name" in group:
            rates[f"lr_{group['name']}"] = group["lr"]
    return rates


def _parameters(optimizer: torch.optim.Optimizer) -> list[torch.nn.Parameter]:
    return [p for group in optimizer.param_groups for p in group["params"]]


@contextlib.contextmanager
def only_trainable(model: torch.nn.Module, trainable: Iterable[torch.nn.Parameter] | None) -> Iterator[None]:
    """Within the block, parameters outside ``trainable`` get no gradient (backward stops early); None: all train."""
    if trainable is None:
        yield
        return
    stepped = {id(p) for p in trainable}
    frozen = [p for p in model.parameters() if p.requires_grad and id(p) not in stepped]
    for p in frozen:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in frozen:
            p.requires_grad_(True)
