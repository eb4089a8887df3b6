"""Where a run's numbers came from: machine, software versions, code commit and training wall time (summed over
every process that trained the run: a resume carries the earlier ones' seconds, training/checkpoint.py).

The train stage writes it beside the model (``provenance.json``); evaluate copies it into the metrics file. It is
kept out of the model file so that the model's bytes depend on the training alone (resume tests compare them).
"""

import hashlib
import importlib.metadata
import platform
import subprocess
from pathlib import Path

import torch

PROVENANCE_FILE = "provenance.json"  # beside models/<run>/model.pt
TIMING_KEYS = ("train_seconds",)  # the only fields that differ between two identical runs on one machine


def device_name(device: torch.device) -> str:
    """'NVIDIA H200' for a GPU; the CPU's model name (from /proc/cpuinfo where there is one) for the CPU."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str | None:
    """The checked-out commit, with '+dirty' when the code (src/, stages/) differs from it; None outside git.

    Params, locks and outputs are left out of the check: a DVC experiment changes them by design."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "stages"], capture_output=True,
                               text=True, check=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def code_digest() -> str:
    """A hash of the dmlbench package's Python sources (relative paths and bytes): the code a run trained with,
    known outside git too. The checkpoint's key holds it, so a checkpoint from other code is never resumed."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def provenance(device: torch.device, world_size: int, precision: str, deterministic: bool,
               train_seconds: float) -> dict:
    """The record of one training run (what the tables' provenance column and README notes draw on)."""
    cuda = device.type == "cuda"
    return {
        "device": device.type, "device_name": device_name(device), "device_count": world_size,
        "cpu_threads": torch.get_num_threads(), "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "python": platform.python_version(), "dmlbench": importlib.metadata.version("dmlbench"),
        "git_commit": git_commit(), "code_digest": code_digest(), "precision": precision,
        "deterministic": deterministic, "train_seconds": round(train_seconds, 1),
    }


def without_timings(record: dict) -> dict:
    """``record`` (a metrics file) without its wall-time fields: what two identical runs share byte for byte."""
    stripped = dict(record)
    if isinstance(stripped.get("provenance"), dict):
        stripped["provenance"] = {k: v for k, v in stripped["provenance"].items() if k not in TIMING_KEYS}
    return stripped
