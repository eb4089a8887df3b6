"""Resumable training state: written atomically every N steps and every epoch, refused if params changed."""

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dmlbench import atomic


@dataclass
class Progress:
    """Where a run stands: epochs finished, batches done in the current one, and their running sums."""

    epoch: int = 0
    step: int = 0
    sums: dict[str, float] = field(default_factory=dict)  # loss terms, correct, seen, seconds
    history: list[dict] = field(default_factory=list)  # one dict per finished epoch


def fingerprint(params: dict[str, Any]) -> str:
    """A stable hash of everything that shapes training; a checkpoint from other params is not resumed."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=list).encode()).hexdigest()


def rng_state() -> dict:
    """Every global RNG a training step may touch (python, numpy, torch CPU and CUDA)."""
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    """Restore what ``rng_state`` captured."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, key: str, progress: Progress, model, optimization, scaler=None,
                    selection=None) -> None:
    """Write the full training state atomically (temp file + rename): a kill never leaves half a file.

    ``optimization`` is a :class:`dmlbench.training.optimization.Optimization` (optimizers and schedule); ``scaler`` is
    the fp16 loss scaler (its scale and growth counter must survive a resume), None at other precisions;
    ``selection`` the :class:`dmlbench.training.selection.Selector` (best epoch so far and its weights) or None.
    """
    atomic.save_torch(path, {
        "fingerprint": key, "progress": progress.__dict__, "rng": rng_state(),
        "model": model.state_dict(), "optimization": optimization.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "selection": selection.state_dict() if selection is not None else None,
    })


def load_checkpoint(path: Path, key: str) -> dict | None:
    """The saved state when ``path`` holds a checkpoint of the same params, else None (start fresh)."""
    if not Path(path).is_file():
        return None
    try:
        # weights_only=False: the RNG states hold numpy and python objects; the file is our own output.
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a foreign or damaged file: saying so and starting fresh loses nothing
        print(f"train: ignoring unreadable checkpoint {path} ({type(exc).__name__}); starting fresh")
        return None
    if saved.get("fingerprint") != key:
        print(f"train: checkpoint {path} comes from other params or code; starting fresh")
        return None
    return saved
