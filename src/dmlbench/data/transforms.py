"""Image presets named by what they are for (a training crop, a test resize), normalised the way the backbone's
weights expect (``dmlbench.models.backbones.Normalization``)."""

import torch
from torchvision import transforms as T


def to_network_input(norm) -> list:
    """PIL image -> float tensor in the backbone's range, channel order and statistics."""
    steps = [T.ToTensor()]  # RGB in [0, 1]
    if norm.scale != 1.0:
        steps.append(Scale(norm.scale))
    if norm.bgr:
        steps.append(RGBToBGR())
    return steps + [T.Normalize(norm.mean, norm.std)]


class Scale(torch.nn.Module):
    """Multiply by a constant (e.g. 255 for weights trained on 0-255 pixels); a module, so workers can pickle it."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


class RGBToBGR(torch.nn.Module):
    """Reverse the channel order of a (3, H, W) tensor (Caffe-trained weights read BGR)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(0)


def train_preset(resize: int, crop: int, norm) -> T.Compose:
    """Resize((resize, resize)) -> RandomCrop(crop) -> horizontal flip (CGD/NormSoftmax training)."""
    return T.Compose([T.Resize((resize, resize)), T.RandomCrop(crop), T.RandomHorizontalFlip(),
                      *to_network_input(norm)])


def eval_preset(resize: int, center_crop: int | None, norm) -> T.Compose:
    """Resize((resize, resize)), optionally CenterCrop(center_crop): deterministic evaluation view."""
    steps = [T.Resize((resize, resize))] + ([T.CenterCrop(center_crop)] if center_crop else [])
    return T.Compose(steps + to_network_input(norm))
