"""DistributedDataParallel helpers: torchrun set-up, and batch gathering for losses that need the whole batch.

Gradient convention of :func:`gather_with_grad`: its backward sums the incoming gradient over ranks and returns
this rank's slice, so rank r's local rows receive d(sum_s L_s)/dx_r, where L_s is the loss rank s computed from
the gathered batch. DDP then averages parameter gradients over the W ranks, giving the gradient of mean_s L_s.
Every rank computes the same whole-batch loss L (same gathered tensor, same function), so that is dL/dθ: the
single-process gradient on the global batch. Per-rank losses (a local mean of cross-entropy over equally sized
slices) need no gathering: DDP's mean of the local means is the global mean.
"""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from dmlbench.errors import DmlbenchError

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class Distributed:
    """Where this process stands in a torchrun job; rank 0 of world 1 when not launched by torchrun."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    is_main: bool = True  # rank 0: the one process that writes logs, checkpoints, metrics and the model


SINGLE = Distributed()


def init_distributed(device_kind: str) -> Distributed:
    """Join the torchrun job named by RANK/WORLD_SIZE/LOCAL_RANK (nccl on CUDA, gloo on CPU); else SINGLE.

    ``device_kind`` is a device name as in params ("auto", "cuda", "cuda:0", "cpu").
    """
    if "WORLD_SIZE" not in os.environ:
        return SINGLE
    missing = [name for name in TORCHRUN_ENV if name not in os.environ]
    if missing:
        raise DmlbenchError(f"WORLD_SIZE is set but {', '.join(missing)} is not: launch with torchrun, which sets "
                            f"{', '.join(TORCHRUN_ENV)}, or unset WORLD_SIZE for one process")
    rank, world, local = (int(os.environ[name]) for name in TORCHRUN_ENV)
    cuda = _device_type(device_kind) == "cuda"
    if cuda:
        _check_gpu(local)
        torch.cuda.set_device(local)  # before the group: NCCL binds each process to its own GPU
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo", rank=rank, world_size=world)
    return Distributed(rank=rank, world_size=world, local_rank=local, is_main=rank == 0)


def cleanup() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def device_for(where: Distributed, device_name: str) -> torch.device:
    """The device for ``device_name`` ("auto" = CUDA when there is one); under DDP each process its own GPU."""
    kind = _device_type(device_name)
    if kind == "cuda" and not torch.cuda.is_available():
        raise DmlbenchError(f"train.device is {device_name!r} but this machine has no CUDA GPU (or torch was "
                            f"built without CUDA): set train.device to auto or cpu")
    if kind == "cuda" and where.world_size > 1:
        return torch.device("cuda", where.local_rank)
    return torch.device(kind) if device_name == "auto" else torch.device(device_name)


def world_size() -> int:
    """The number of processes in the job; 1 without a process group."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenation of every rank's ``x`` along dim 0, in rank order; differentiable (see the module docstring)."""
    if world_size() == 1:
        return x
    return _GatherWithGrad.apply(x)


def gather_outputs(outputs: tuple[torch.Tensor, ...], labels: torch.Tensor) -> tuple[tuple, torch.Tensor]:
    """Every model output and the labels of the global batch (rows in rank order); unchanged in one process."""
    if world_size() == 1:
        return outputs, labels
    return tuple(gather_with_grad(output) for output in outputs), _gather(labels)


def sum_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """Each value summed over ranks (counts); divide by the world size for means of per-rank values."""
    if world_size() == 1:
        return dict(values)
    # NCCL reduces only CUDA tensors; gloo takes CPU ones.
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    totals = torch.tensor(list(values.values()), dtype=torch.float64, device=device)
    dist.all_reduce(totals)
    return dict(zip(values, totals.tolist()))


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums the gradient over ranks and keeps this rank's rows."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        gathered = _gather(x)
        ctx.rows = slice(dist.get_rank() * len(x), (dist.get_rank() + 1) * len(x))
        return gathered

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        # A copy: all_reduce works in place, and autograd may still hold the incoming gradient.
        total = grad.contiguous().clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total[ctx.rows]


def _gather(x: torch.Tensor) -> torch.Tensor:
    """Plain all_gather along dim 0 (no autograd) after checking that every rank holds as many rows."""
    _check_same_rows(x)
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def _check_same_rows(x: torch.Tensor) -> None:
    # all_gather needs equal sizes; unequal ones would fail obscurely or hang. Every rank sees the same list,
    # so all of them raise together.
    rows = torch.tensor([len(x)], device=x.device)
    counts = [torch.empty_like(rows) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, rows)
    found = [int(c) for c in counts]
    if len(set(found)) > 1:
        raise DmlbenchError(f"gathering a batch needs the same number of rows on every rank, got {found} in rank "
                            f"order: give every rank the same number of images (DistributedPxKSampler does)")


def _device_type(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name).type


def _check_gpu(local_rank: int) -> None:
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise DmlbenchError(f"process with LOCAL_RANK {local_rank} has no GPU: this node has {count}; set "
                            f"train.nproc (torchrun --nproc_per_node) to at most {count}")
