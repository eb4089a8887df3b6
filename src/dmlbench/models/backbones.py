"""torchvision backbones by name, with ImageNet weights or a one-line error saying how to place them."""

import os
from typing import Callable

import torch
from torchvision import models
from torchvision.models import ResNet

from dmlbench.errors import DmlbenchError
from dmlbench.registry import get

# name -> (torchvision builder, the weights the seeds' `pretrained=True` loaded, output channels)
BACKBONES: dict[str, tuple[Callable[..., ResNet], models.WeightsEnum, int]] = {
    "resnet18": (models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1, 512),
    "resnet34": (models.resnet34, models.ResNet34_Weights.IMAGENET1K_V1, 512),
    "resnet50": (models.resnet50, models.ResNet50_Weights.IMAGENET1K_V1, 2048),
    "resnext50": (models.resnext50_32x4d, models.ResNeXt50_32X4D_Weights.IMAGENET1K_V1, 2048),
}


def backbone_channels(name: str) -> int:
    """Channels of the backbone's last feature map (512 or 2048)."""
    return get(BACKBONES, name, "backbone")[2]


def build_backbone(name: str, pretrained: bool) -> ResNet:
    """The full torchvision model; ImageNet weights when ``pretrained``."""
    builder, weights, _ = get(BACKBONES, name, "backbone")
    model = builder(weights=None)
    if pretrained:
        model.load_state_dict(_imagenet_state_dict(name, weights))
    return model


def _imagenet_state_dict(name: str, weights: models.WeightsEnum) -> dict:
    """torchvision's cached or downloaded state dict, or a one-line DmlbenchError saying where to put it."""
    file = weights.url.rsplit("/", 1)[-1]
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # URLError, OSError, hash mismatch, bad file: all mean "not available here"
        checkpoints = os.path.join(torch.hub.get_dir(), "checkpoints")
        raise DmlbenchError(
            f"ImageNet weights for backbone {name} are not available ({type(exc).__name__}): download "
            f"{weights.url} and place {file} in {checkpoints}/ ($TORCH_HOME/hub/checkpoints/, default "
            f"~/.cache/torch/hub/checkpoints/), or set train.pretrained: false"
        ) from None
