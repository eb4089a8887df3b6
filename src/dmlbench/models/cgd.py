"""The CGD network: ResNet trunk (layer3 stride 1) -> S/M/G descriptors -> FC + L2 -> concat + L2."""

import torch
import torch.nn.functional as F
from torch import nn

from dmlbench.errors import DmlbenchError
from dmlbench.models.backbones import backbone_channels, build_backbone, require_resnet
from dmlbench.models.descriptors import DESCRIPTORS
from dmlbench.models.frozen_bn import FrozenBatchNormStats

GD_CONFIGS = ("S", "M", "G", "SM", "MS", "SG", "GS", "MG", "GM", "SMG", "MSG", "GSM")


def check_descriptors(gd_config: str, feature_dim: int) -> None:
    """One-line error for an unknown descriptor order or a feature_dim the descriptors cannot share."""
    if gd_config not in GD_CONFIGS:
        raise DmlbenchError(f"unknown gd_config {gd_config!r} (choices: {', '.join(GD_CONFIGS)})")
    if feature_dim % len(gd_config):
        raise DmlbenchError(f"feature_dim {feature_dim} does not divide by the {len(gd_config)} descriptors "
                            f"of gd_config {gd_config!r}: use a multiple of {len(gd_config)}")


def cgd_trunk(backbone: str, pretrained: bool) -> nn.Sequential:
    """conv1..layer4 of a torchvision ResNet with the seed's change: layer3's first block keeps stride 1."""
    require_resnet(backbone, "cgd")
    net = build_backbone(backbone, pretrained)
    block = net.layer3[0]
    strided = block.conv2 if hasattr(block, "conv3") else block.conv1  # Bottleneck vs BasicBlock
    strided.stride = (1, 1)
    block.downsample[0].stride = (1, 1)
    return nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4)


class CGD(FrozenBatchNormStats, nn.Module):
    """forward(x) -> (embedding (B, feature_dim), L2-normalised; logits (B, num_classes))."""

    def __init__(self, backbone: str, gd_config: str, feature_dim: int, num_classes: int, pretrained: bool,
                 freeze_bn: bool = True):
        super().__init__()
        check_descriptors(gd_config, feature_dim)
        channels = backbone_channels(backbone)
        self.gd_config = gd_config
        self.freeze_bn = freeze_bn
        self.trunk = cgd_trunk(backbone, pretrained)
        self.heads = nn.ModuleList(nn.Linear(channels, feature_dim // len(gd_config), bias=False)
                                   for _ in gd_config)
        # The auxiliary classifier sees the first descriptor before its FC layer.
        self.classifier = nn.Sequential(nn.BatchNorm1d(channels), nn.Linear(channels, num_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(x)  # (B, C, H/16, W/16) with the stride change
        descriptors = [DESCRIPTORS[letter](features) for letter in self.gd_config]  # each (B, C)
        parts = [F.normalize(head(d), dim=1) for head, d in zip(self.heads, descriptors)]
        embedding = F.normalize(torch.cat(parts, dim=1), dim=1)  # (B, feature_dim)
        return embedding, self.classifier(descriptors[0])

    def frozen_bn_scope(self) -> nn.Module:
        return self.trunk
