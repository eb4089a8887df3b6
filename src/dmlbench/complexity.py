"""Params and thop multiply-accumulates (MACs; the seeds' tables call them FLOPs), in two conventions.

"seed": the rules of thop 0.0.31 (early 2020), which every seed table was printed with -- Conv
out_numel x (Cin/groups x prod(kernel) + bias); BatchNorm (eval) 2 x numel; Linear (2 x in - 1 + bias)
x out_numel; activations, pooling and functional ops 0. "thop": the installed thop's own rules.
"""

import copy

import torch
from torch import nn

ZERO_COST = (nn.ReLU, nn.ReLU6, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d,
             nn.Identity, nn.Dropout, nn.Flatten, nn.Sequential, nn.ModuleList)


def _add(module: nn.Module, ops: int) -> None:
    module.total_ops += torch.tensor([float(ops)], dtype=torch.float64)


def _conv(module: nn.Conv2d, inputs, output: torch.Tensor) -> None:
    per_output = module.in_channels // module.groups * int(torch.tensor(module.kernel_size).prod())
    _add(module, output.numel() * (per_output + (module.bias is not None)))


def _batchnorm(module: nn.Module, inputs, output: torch.Tensor) -> None:
    _add(module, 2 * inputs[0].numel())


def _linear(module: nn.Linear, inputs, output: torch.Tensor) -> None:
    _add(module, output.numel() * (2 * module.in_features - 1 + (module.bias is not None)))


def _zero(module: nn.Module, inputs, output) -> None:
    _add(module, 0)


SEED_RULES = {nn.Conv1d: _conv, nn.Conv2d: _conv, nn.BatchNorm1d: _batchnorm, nn.BatchNorm2d: _batchnorm,
              nn.Linear: _linear, **{kind: _zero for kind in ZERO_COST}}


def count_params(model: nn.Module) -> int:
    """All parameters, trainable or not (what the seeds' thop column counts)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, image_size: int = 224, convention: str = "seed") -> int:
    """thop MACs of one 1x3xSxS forward in eval mode, on a copy (thop adds buffers to what it profiles)."""
    from thop import profile

    if convention not in ("seed", "thop"):
        raise ValueError(f"convention must be 'seed' or 'thop', got {convention!r}")
    probe = copy.deepcopy(model).eval()
    rules = SEED_RULES if convention == "seed" else None
    macs, _ = profile(probe, inputs=(torch.randn(1, 3, image_size, image_size),), custom_ops=rules,
                      verbose=False)
    return int(round(macs))


def format_count(n: float) -> str:
    """thop's clever_format with "%.2f": 26858658 -> '26.86M', 10644006912 -> '10.64G'."""
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if n > scale:
            return f"{n / scale:.2f}{suffix}"
    return f"{n:.2f}B"
