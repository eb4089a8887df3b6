"""The CGD-TF seed's two networks: its CGD variant (standard strides, no classifier) and its reference head."""

import torch
import torch.nn.functional as F
from torch import nn

from dmlbench.models.backbones import backbone_channels, build_trunk
from dmlbench.models.cgd import check_descriptors
from dmlbench.models.descriptors import DESCRIPTORS


class CGDTF(nn.Module):
    """forward(x) -> (embedding,): trunk with its standard strides -> descriptors of ``gd_config``, each through
    Linear(C -> feature_dim / n, no bias) + L2 -> concatenation + L2. No auxiliary classifier."""

    def __init__(self, backbone: str, gd_config: str, feature_dim: int, pretrained: bool):
        super().__init__()
        check_descriptors(gd_config, feature_dim)
        self.gd_config = gd_config
        self.trunk = build_trunk(backbone, pretrained)
        channels = backbone_channels(backbone)
        self.heads = nn.ModuleList(nn.Linear(channels, feature_dim // len(gd_config), bias=False)
                                   for _ in gd_config)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        features = self.trunk(x)  # (B, C, H/32, W/32)
        parts = [F.normalize(head(DESCRIPTORS[letter](features)), dim=1)
                 for letter, head in zip(self.gd_config, self.heads)]
        return (F.normalize(torch.cat(parts, dim=1), dim=1),)  # (B, feature_dim)


def feature_grid(trunk: nn.Module, image_size: int) -> tuple[int, int]:
    """(h, w) of the trunk's feature map for a square ``image_size`` input (one probe forward, no gradient)."""
    was_training = trunk.training
    trunk.eval()  # the probe must not move BatchNorm statistics
    with torch.no_grad():
        grid = tuple(trunk(torch.zeros(1, 3, image_size, image_size)).shape[2:])
    trunk.train(was_training)
    return grid


def keras_init(module: nn.Module) -> None:
    """Keras's defaults, which the seed's head started from: Glorot-uniform kernels, zero biases."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)


class ReferenceHead(nn.Module):
    """The seed's reference network: trunk -> 1x1 conv 512 (swish) -> 1x1 conv 128 (swish) -> flatten -> Dense
    1024 (swish) -> BatchNorm -> Dense feature_dim, not normalised. forward(x) -> (embedding,).

    Flatten fixes the Dense layer to the feature grid of ``image_size``; an input of another size (the complexity
    stage counts at 224 px) is average-pooled to that grid first.
    """

    def __init__(self, backbone: str, feature_dim: int, image_size: int, pretrained: bool):
        super().__init__()
        self.trunk = build_trunk(backbone, pretrained)
        self.grid = feature_grid(self.trunk, image_size)
        self.convs = nn.Sequential(nn.Conv2d(backbone_channels(backbone), 512, 1), nn.SiLU(),
                                   nn.Conv2d(512, 128, 1), nn.SiLU())
        # Keras's BatchNormalization defaults: momentum 0.99 (PyTorch counts the other way: 0.01), epsilon 1e-3.
        self.dense = nn.Sequential(nn.Linear(128 * self.grid[0] * self.grid[1], 1024), nn.SiLU(),
                                   nn.BatchNorm1d(1024, eps=1e-3, momentum=0.01), nn.Linear(1024, feature_dim))
        self.convs.apply(keras_init)
        self.dense.apply(keras_init)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        features = self.trunk(x)  # (B, C, h, w)
        if tuple(features.shape[2:]) != self.grid:
            features = F.adaptive_avg_pool2d(features, self.grid)
        return (self.dense(torch.flatten(self.convs(features), 1)),)  # (B, feature_dim)
