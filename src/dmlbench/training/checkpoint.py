"""Resumable training state: written atomically every N steps and every epoch, refused if params changed."""

import hashlib
import json
import math
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

    ``optimization`` is a :class:`dmlbench.methods.optimization.Optimization` (optimizers and schedule); ``scaler`` is
    the fp16 loss scaler (its scale and growth counter must survive a resume), None at other precisions;
    ``selection`` the :class:`dmlbench.training.selection.Selector` (best epoch so far and its weights) or None.
    """
    atomic.save_torch(path, {
        "fingerprint": key, "progress": progress.__dict__, "rng": rng_state(),
        "model": model.state_dict(), "optimization": optimization.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "selection": selection.state_dict() if selection is not None else None,
    })


def elapsed_path(path: Path) -> Path:
    """Where the training's elapsed seconds are kept: beside the checkpoint (train.pt -> train.elapsed.json)."""
    return Path(path).with_suffix(".elapsed.json")


def save_elapsed(path: Path, key: str, progress: Progress, seconds: float) -> None:
    """Record the seconds every process of this training has spent up to the checkpoint just written.

    Beside the checkpoint, not in it: the checkpoint's bytes must reproduce, a wall time never does."""
    atomic.write_json(elapsed_path(path), {"fingerprint": key, "epoch": progress.epoch, "step": progress.step,
                                           "seconds": round(seconds, 3)})


def load_elapsed(path: Path, key: str, progress: Progress) -> float:
    """The seconds the earlier processes spent, as recorded with the checkpoint resumed at ``progress``; 0.0 when
    there is no record of this training (another key), or it is unreadable or from a later position."""
    try:
        record = json.loads(elapsed_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0.0
    if not isinstance(record, dict) or record.get("fingerprint") != key:
        return 0.0
    seconds, epoch, step = record.get("seconds"), record.get("epoch"), record.get("step")
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (seconds, epoch, step))
    # A kill between the checkpoint's write and this record's leaves the record one save behind: it still counts
    # (up to its own save); one ahead of the checkpoint cannot be this training's.
    if not numbers or not math.isfinite(seconds) or seconds < 0 or (epoch, step) > (progress.epoch, progress.step):
        return 0.0
    return float(seconds)


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
