"""`train.nproc > 1`: re-run a stage script under torchrun (DistributedDataParallel), one process per device."""

import os
import subprocess
import sys

from dmlbench.errors import DmlbenchError


def under_torchrun() -> bool:
    """Whether this process was started by torchrun (it sets LOCAL_RANK for every process it starts)."""
    return "LOCAL_RANK" in os.environ


def torchrun(script: str, nproc: int, args: list[str] | None = None) -> None:
    """Run ``script [args]`` as ``torchrun --standalone --nproc_per_node nproc``; one DmlbenchError if a rank fails."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", script,
               *(args or [])]
    print(f"train: launching {nproc} processes: {' '.join(command[1:])}", flush=True)
    returncode = subprocess.run(command, check=False).returncode
    if returncode != 0:
        raise DmlbenchError(f"torchrun with {nproc} processes failed (exit {returncode}): the ranks' own messages "
                            f"are above; the last checkpoint is kept, rerun dvc repro to resume")
