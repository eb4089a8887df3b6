"""Global descriptors of a (B, C, H, W) feature map -> (B, C): S (mean), M (max), G (GeM)."""

import torch


def spatial_mean(x: torch.Tensor) -> torch.Tensor:
    """S: sum pooling up to a constant, i.e. global average pooling."""
    return x.mean(dim=(2, 3))


def spatial_max(x: torch.Tensor) -> torch.Tensor:
    """M: global max pooling (MAC)."""
    return x.amax(dim=(2, 3))


def gem(x: torch.Tensor, p: float = 3.0) -> torch.Tensor:
    """G: generalized mean, sign(m) |m|^(1/p) with m = mean(x^p) (signed root, as in the CGD seed)."""
    m = x.pow(p).mean(dim=(2, 3))
    return torch.sign(m) * m.abs().pow(1.0 / p)


DESCRIPTORS = {"S": spatial_mean, "M": spatial_max, "G": gem}
