"""Many learners of one architecture run as one network: their convolutions and BatchNorms stacked along the
channels (grouped convolutions, one group per learner), their Linear heads as one batched matmul.

Learner e owns output channels [e * C, (e + 1) * C) of every fused layer. A grouped convolution sees only its
own learner's input channels, and a BatchNorm2d over E x C channels normalises each channel on its own, in
training mode too, so the fused network computes exactly what the E learners compute one after the other (and
holds exactly their parameters). Convolutions that read the input all learners share take it once, ungrouped.
"""

import copy

import torch
from torch import nn
from torch.func import functional_call


class LinearStack(nn.Module):
    """E Linear(C -> M) layers with bias applied to (B, E, C) -> (B, E, M); weight (E, M, C), bias (E, M)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(bias)

    @classmethod
    def from_linears(cls, linears: list[nn.Linear]) -> "LinearStack":
        """Stack the weights and biases of ``linears`` (all of one shape, with bias)."""
        return cls(torch.stack([lin.weight.detach() for lin in linears]),
                   torch.stack([lin.bias.detach() for lin in linears]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bec,emc->bem", x, self.weight) + self.bias

    @property
    def in_features(self) -> int:
        return self.weight.shape[2]


def fuse_conv(convs: list[nn.Conv2d], shared_input: bool) -> nn.Conv2d:
    """One convolution computing all of ``convs``; ``shared_input``: they all read the same input tensor."""
    first = convs[0]
    if shared_input and first.groups != 1:
        raise ValueError("a convolution on the shared input must be ungrouped")
    count = len(convs)
    in_channels = first.in_channels if shared_input else count * first.in_channels
    groups = first.groups if shared_input else count * first.groups
    with torch.device("meta"):
        fused = nn.Conv2d(in_channels, count * first.out_channels, first.kernel_size, first.stride, first.padding,
                          first.dilation, groups, first.bias is not None, first.padding_mode)
    fused.weight = nn.Parameter(torch.cat([c.weight.detach() for c in convs]))
    if first.bias is not None:
        fused.bias = nn.Parameter(torch.cat([c.bias.detach() for c in convs]))
    return fused


def fuse_batchnorm(norms: list[nn.BatchNorm2d]) -> nn.BatchNorm2d:
    """One BatchNorm2d over all channels of ``norms`` (statistics and affine parameters concatenated)."""
    first = norms[0]
    with torch.device("meta"):
        fused = nn.BatchNorm2d(len(norms) * first.num_features, first.eps, first.momentum, first.affine,
                               first.track_running_stats)
    if first.affine:
        fused.weight = nn.Parameter(torch.cat([n.weight.detach() for n in norms]))
        fused.bias = nn.Parameter(torch.cat([n.bias.detach() for n in norms]))
    if first.track_running_stats:
        fused.running_mean = torch.cat([n.running_mean for n in norms])
        fused.running_var = torch.cat([n.running_var for n in norms])
        fused.num_batches_tracked = first.num_batches_tracked.clone()
    return fused


def fuse_learners(learners: list[nn.Module], shared_input: set[str]) -> nn.Module:
    """The learners as one module of the same structure; ``shared_input`` names the convolutions that read the
    input every learner gets (the rest read their own learner's channels)."""
    modules = [dict(learner.named_modules()) for learner in learners]
    fused = copy.deepcopy(learners[0])
    for name, module in list(fused.named_modules()):
        parts = [m[name] for m in modules]
        if isinstance(module, nn.Conv2d):
            _replace(fused, name, fuse_conv(parts, name in shared_input))
        elif isinstance(module, nn.BatchNorm2d):
            _replace(fused, name, fuse_batchnorm(parts))
        elif next(module.children(), None) is None and next(module.parameters(recurse=False), None) is not None:
            raise ValueError(f"cannot fuse {type(module).__name__} {name!r}: only Conv2d and BatchNorm2d hold weights")
    return fused


def _replace(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


def single_learner(learner: nn.Module) -> nn.Module:
    """A weightless (meta device) copy of one learner: the structure ``run_one_by_one`` fills with slices."""
    return copy.deepcopy(learner).to("meta")


def run_one_by_one(fused: nn.Module, template: nn.Module, count: int, x: torch.Tensor) -> list[torch.Tensor]:
    """What ``fused`` computes, learner by learner: each learner's output from its own slices of the fused
    weights and statistics (the layout above), run through ``template``. Training-mode BatchNorm updates the
    fused running statistics in place, and ``num_batches_tracked`` once per call, as the fused form does."""
    template.train(fused.training)
    # One split per tensor (not a slice per learner): backward then joins the E gradients with one concatenation.
    parts = {name: tensor.chunk(count) for name, tensor in (*fused.named_parameters(), *fused.named_buffers())
             if tensor.dim() > 0}
    counters = dict(named for named in fused.named_buffers() if named[1].dim() == 0)
    outputs = []
    for e in range(count):
        tensors = {name: chunks[e] for name, chunks in parts.items()}
        tensors.update(counters if e == 0 else {name: t.clone() for name, t in counters.items()})
        outputs.append(functional_call(template, tensors, (x,)))
    return outputs
