"""Backbones by name: the network, its feature trunk, its channel count and the input normalisation its weights
expect; ImageNet weights, or a one-line error saying where to place them."""

import os
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torchvision import models

from dmlbench.errors import DmlbenchError
from dmlbench.models import bn_inception
from dmlbench.registry import get


@dataclass(frozen=True)
class Normalization:
    """How pixels reach the network: RGB in [0, 1] (scale 1) or [0, 255] (scale 255), optionally as BGR, then
    (x - mean) / std per channel, in the network's channel order."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float = 1.0
    bgr: bool = False


IMAGENET = Normalization((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# torchvision's GoogLeNet weights were ported from TensorFlow: its transform_input maps ImageNet-normalised input
# to (x - 0.5) / 0.5; we feed that directly and build the network without transform_input.
HALF = Normalization((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
# Caffe-trained weights (BN-Inception): BGR pixels in 0-255 minus the channel means, std 1.
CAFFE_BGR = Normalization((104.0, 117.0, 128.0), (1.0, 1.0, 1.0), scale=255.0, bgr=True)


@dataclass(frozen=True)
class Backbone:
    """A registry entry: builder, the weights the seeds' `pretrained=True` loaded, output channels, the input
    normalisation, the trunk (the network up to its last feature map, no pooling), and the dropout the full network
    applies to its pooled features in training (a seed that swaps only the pooling and classifier keeps it)."""

    build: Callable[[], nn.Module]
    weights: models.WeightsEnum
    channels: int
    normalization: Normalization
    trunk: Callable[[nn.Module], nn.Sequential]
    pooled_dropout: float = 0.0


def _resnet_trunk(net: nn.Module) -> nn.Sequential:
    return nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4)


def _googlenet_trunk(net: nn.Module) -> nn.Sequential:
    names = ["conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
             "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4", "inception5a",
             "inception5b"]
    return nn.Sequential(*(getattr(net, n) for n in names))


def _googlenet() -> nn.Module:
    return models.googlenet(weights=None, aux_logits=False, transform_input=False, init_weights=True)


BACKBONES: dict[str, Backbone] = {
    "resnet18": Backbone(models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1, 512, IMAGENET, _resnet_trunk),
    "resnet34": Backbone(models.resnet34, models.ResNet34_Weights.IMAGENET1K_V1, 512, IMAGENET, _resnet_trunk),
    "resnet50": Backbone(models.resnet50, models.ResNet50_Weights.IMAGENET1K_V1, 2048, IMAGENET, _resnet_trunk),
    "resnext50": Backbone(models.resnext50_32x4d, models.ResNeXt50_32X4D_Weights.IMAGENET1K_V1, 2048, IMAGENET,
                          _resnet_trunk),
    "googlenet": Backbone(_googlenet, models.GoogLeNet_Weights.IMAGENET1K_V1, 1024, HALF, _googlenet_trunk,
                          pooled_dropout=0.2),  # torchvision's GoogLeNet: Dropout(0.2) between pooling and fc
    "bn_inception": Backbone(bn_inception.build_bn_inception, bn_inception.BNInceptionWeights(),
                             bn_inception.CHANNELS, CAFFE_BGR, bn_inception.bn_inception_trunk),
}
RESNETS = ("resnet18", "resnet34", "resnet50", "resnext50")


def backbone_entry(name: str) -> Backbone:
    """The registry entry of ``name`` (unknown names list the choices)."""
    return get(BACKBONES, name, "backbone")


def backbone_channels(name: str) -> int:
    """Channels of the backbone's last feature map."""
    return backbone_entry(name).channels


def build_backbone(name: str, pretrained: bool) -> nn.Module:
    """The full network; ImageNet weights when ``pretrained`` (auxiliary heads, when the weights have them,
    are dropped: no backbone here keeps one)."""
    entry = backbone_entry(name)
    model = entry.build()
    if pretrained:
        wanted = model.state_dict().keys()
        state = {k: v for k, v in _imagenet_state_dict(name, entry.weights).items() if k in wanted}
        model.load_state_dict(state)
    return model


def build_trunk(name: str, pretrained: bool) -> nn.Sequential:
    """The backbone up to its last feature map (B, channels, h, w), without pooling or classifier."""
    return backbone_entry(name).trunk(build_backbone(name, pretrained))


def require_resnet(name: str, method: str) -> None:
    """One line for a method whose architecture edits ResNet layers, given another backbone."""
    if name not in RESNETS:
        raise DmlbenchError(f"method {method} needs a ResNet backbone (it changes ResNet layers), got {name!r}: "
                            f"set backbone to one of {', '.join(RESNETS)}")


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
