"""Params and thop multiply-accumulates (MACs; the seeds' tables call them FLOPs), in two conventions.

"seed" reproduces thop 0.0.31.post2001170342 (early 2020), which printed every seed table, passed to today's
thop as ``custom_ops`` (``out`` = output numel, ``in`` = input numel):
  Conv/ConvTranspose 1-3d  out x (Cin/groups x prod(kernel) + 1 if bias)
  BatchNorm 1-3d (eval)    2 x in
  Linear                   out x (in_features + (in_features - 1) + 1 if bias) = out x (2 x in_features - 1 + bias)
  AvgPool 1-3d             out x 1;  AdaptiveAvgPool 1-3d  out x (prod(in_size // out_size) + 1)
  LeakyReLU                in;       Upsample  out x 0/5/11/259 (nearest/linear/bilinear/bicubic)
  LinearStack (LREC's E heads)  counted as E Linear layers, in both conventions
  everything else 0: ReLU, ReLU6, max pooling, Dropout, Identity, LayerNorm, Softmax, Sequential, custom
  modules (a bare Parameter) and functional ops.
It also sums like that release: each leaf module's count is a float32 and the total a float32 running sum in
``model.modules()`` order, so e.g. CGD R50 prints 10,644,006,912 where the integer sum is 10,644,007,424
(convention "seed_exact"). "thop": the installed thop's own rules (BatchNorm 4 x in, Linear in x out, ...).
"""

import copy
import math
from typing import Callable

import torch
from torch import nn

from dmlbench.models.lrec_fused import LinearStack

CONVENTIONS = ("seed", "seed_exact", "thop")
Rule = Callable[[nn.Module, tuple, torch.Tensor], int]


def _conv(module: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
    return output.numel() * (per_output + (module.bias is not None))


def _batchnorm(module: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    return 2 * inputs[0].numel()  # eval mode only (2020 thop counted nothing sensible in train mode)


def _linear(module: nn.Linear, inputs: tuple, output: torch.Tensor) -> int:
    return output.numel() * (2 * module.in_features - 1 + (module.bias is not None))


def _linear_stack(module: LinearStack, inputs: tuple, output: torch.Tensor) -> int:
    return output.numel() * 2 * module.in_features  # E Linear(C -> M) with bias: (2C - 1 + 1) per output


def _linear_stack_thop(module: LinearStack, inputs: tuple, output: torch.Tensor) -> None:
    module.total_ops += torch.tensor([float(output.numel() * module.in_features)], dtype=torch.float64)


def _avgpool(module: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    return output.numel()


def _adaptive_avgpool(module: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    window = math.prod(i // o for i, o in zip(inputs[0].shape[2:], output.shape[2:]))
    return output.numel() * (window + 1)


def _leaky_relu(module: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    return inputs[0].numel()


def _upsample(module: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    return output.numel() * {"linear": 5, "bilinear": 11, "bicubic": 259}.get(module.mode, 0)


SEED_RULES: dict[type, Rule] = {
    **dict.fromkeys((nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                     nn.ConvTranspose3d), _conv),
    **dict.fromkeys((nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d), _batchnorm),
    nn.Linear: _linear,
    LinearStack: _linear_stack,
    **dict.fromkeys((nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d), _avgpool),
    **dict.fromkeys((nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d), _adaptive_avgpool),
    nn.LeakyReLU: _leaky_relu,
    **dict.fromkeys((nn.Upsample, nn.UpsamplingBilinear2d, nn.UpsamplingNearest2d), _upsample),
}


class _SeedCounter:
    """thop custom_ops for the 2020 rules that also remember each module's count for the float32 total."""

    def __init__(self) -> None:
        self.counts: dict[nn.Module, list[int]] = {}

    def custom_ops(self) -> dict[type, Callable]:
        from thop.profile import register_hooks  # today's defaults: any type the 2020 rules lack counts 0

        types = set(register_hooks) | set(SEED_RULES) | {nn.Identity}
        return {kind: self._hook(SEED_RULES.get(kind)) for kind in types}

    def _hook(self, rule: Rule | None) -> Callable:
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            ops = rule(module, inputs, output) if rule is not None else 0
            self.counts.setdefault(module, []).append(ops)
            module.total_ops += torch.tensor([float(ops)], dtype=torch.float64)

        return hook

    def float32_total(self, model: nn.Module) -> int:
        """Leaf modules in ``model.modules()`` order, each a float32, summed in float32 (as thop 0.0.31 did)."""
        total = torch.zeros(1, dtype=torch.float32)
        for module in model.modules():
            if next(module.children(), None) is not None:
                continue
            per_module = torch.zeros(1, dtype=torch.float32)
            for ops in self.counts.get(module, []):
                per_module += torch.tensor([float(ops)], dtype=torch.float32)
            total += per_module
        return int(total.item())


def count_params(model: nn.Module) -> int:
    """All parameters, trainable or not, classifier included (the seeds' thop column)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, image_size: int = 224, convention: str = "seed") -> int:
    """thop MACs (not FLOPs) of one 1x3xSxS forward in eval mode, profiled on a deep copy of ``model``.

    convention: "seed" (2020 thop rules and float32 sum, as printed), "seed_exact" (same rules, integer sum),
    "thop" (the installed thop's defaults).
    """
    from thop import profile

    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {', '.join(CONVENTIONS)}, got {convention!r}")
    # thop leaves buffers behind: never touch the caller's model. Counting needs shapes only, so the copy lives on
    # the meta device: nothing is allocated, and a model that picks its form by device (LREC runs its learners
    # one by one on the CPU) counts the form it runs on an accelerator, as the complexity stage does.
    probe = copy.deepcopy(model).to("meta").eval()
    counter = _SeedCounter() if convention != "thop" else None
    inputs = (torch.randn(1, 3, image_size, image_size, device="meta"),)
    custom_ops = counter.custom_ops() if counter else {LinearStack: _linear_stack_thop}
    macs, _ = profile(probe, inputs=inputs, custom_ops=custom_ops, verbose=False)
    if convention == "seed":
        return counter.float32_total(probe)
    return int(round(macs))


def format_count(n: float) -> str:
    """thop's clever_format with "%.2f": 26858658 -> '26.86M', 10644006912 -> '10.64G'."""
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if n > scale:
            return f"{n / scale:.2f}{suffix}"
    return f"{n:.2f}B"


def measure(method, cfg, backbone: str, dataset: str, classes: int, image_size: int, seed: int) -> dict:
    """One cell: the method's full model (classifier included) built with ``cfg``, as the seeds count it.

    Built on the meta device (shapes, no values): LREC's billion-parameter ensembles cost nothing to count.
    """
    with torch.device("meta"):
        model = method.build_model(cfg, backbone, classes, False, seed)
    return {"backbone": backbone, "dataset": dataset, "classes": classes, "params": count_params(model),
            "macs_seed": count_flops(model, image_size, convention="seed"),
            "macs_thop": count_flops(model, image_size, convention="thop")}
