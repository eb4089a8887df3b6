"""How a training step runs fast on a GPU without changing what it computes: mixed precision, memory format,
compilation and loader options. On the CPU the defaults resolve to fp32 eager, so results stay reproducible."""

import contextlib
import math
import os

import torch

from dmlbench.errors import DmlbenchError

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
MIN_PREFETCH_BATCHES = 4  # batches decoded ahead over all workers: absorbs a few slow images, pins little memory


def resolve_precision(name: str, device: torch.device, where: str) -> str:
    """'auto' is bf16 on a CUDA GPU that has it natively, fp16 on an older one, fp32 elsewhere; others checked."""
    cuda = device.type == "cuda"
    native_bf16 = cuda and torch.cuda.is_bf16_supported(including_emulation=False)
    if name == "auto":
        return ("bf16" if native_bf16 else "fp16") if cuda else "fp32"
    if name == "bf16" and cuda and not native_bf16:
        raise DmlbenchError(f"params.yaml: {where} = bf16 needs a GPU with native bfloat16 (compute capability "
                            f">= 8.0); set it to auto or fp16")
    return name


def select_kernels(deterministic: bool) -> None:
    """Reproducible kernels (``train.deterministic``), or the fastest ones cuDNN finds for the batch shape."""
    if deterministic:  # cuBLAS needs a fixed workspace for reproducible matmuls
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # Autotuning times candidate kernels once per input shape (batches have one shape); the pick varies by run.
    torch.backends.cudnn.benchmark = not deterministic
    torch.use_deterministic_algorithms(deterministic)


def autocast(device: torch.device, precision: str):
    """The autocast context of a resolved ``precision``; fp32 runs without one."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=AUTOCAST_DTYPES[precision])


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    """A loss scaler for fp16, whose narrow range flushes small gradients to zero; bf16 has fp32's range."""
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None


def memory_format(channels_last: bool) -> torch.memory_format:
    """NHWC lets cuDNN use tensor-core convolutions without transposing every layer's input."""
    return torch.channels_last if channels_last else torch.contiguous_format


def to_device(images: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """Copy a batch to ``device`` (asynchronous from pinned memory), then lay it out as the model expects."""
    # The layout change runs on the device after the copy, so the host never waits for it.
    return images.to(device, non_blocking=True).contiguous(memory_format=memory_format(channels_last))


def loader_options(workers: int, device: torch.device) -> dict:
    """DataLoader keywords: pinned batches on CUDA, workers kept across epochs, a few batches decoded ahead."""
    options = {"num_workers": workers, "pin_memory": device.type == "cuda"}
    if workers > 0:
        options.update(persistent_workers=True, prefetch_factor=max(2, math.ceil(MIN_PREFETCH_BATCHES / workers)))
    return options
