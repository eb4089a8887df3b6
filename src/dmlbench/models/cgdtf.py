"""The CGD-TF seed's two networks, each with its auxiliary classifier: its CGD variant (standard strides) and its
reference head."""

import torch
import torch.nn.functional as F
from torch import nn

from dmlbench.models.backbones import backbone_channels, build_trunk
from dmlbench.models.cgd import check_descriptors
from dmlbench.models.descriptors import DESCRIPTORS

NORM_FLOOR = 1e-12  # tf.math.l2_normalize's epsilon: a floor on the squared norm
COMPONENT_FLOOR = 1e-6  # the seed's maximum(., 1e-6) after normalising: negative components are clipped to it


def clipped_l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """The seed's normalisation of each row: maximum(x / sqrt(max(|x|^2, 1e-12)), 1e-6), element-wise.

    Every component ends >= 1e-6 (negatives clipped), so the row is non-negative and its squared norm is 1 less the
    squares of the clipped components (plus at most D x 1e-12). Half-precision input is computed in float32 (its
    squares overflow float16).
    """
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    unit = x * x.square().sum(dim=1, keepdim=True).clamp_min(NORM_FLOOR).rsqrt()
    return unit.clamp_min(COMPONENT_FLOOR)


def keras_init(module: nn.Module) -> None:
    """Keras's defaults, which the seed's layers started from: Glorot-uniform kernels, zero biases."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)


def keras_batch_norm(features: int) -> nn.BatchNorm1d:
    """Keras's BatchNormalization defaults: momentum 0.99 (PyTorch counts the other way: 0.01), epsilon 1e-3."""
    return nn.BatchNorm1d(features, eps=1e-3, momentum=0.01)


class AuxiliaryClassifier(nn.Sequential):
    """The seed's classification head: Linear(in -> C) + swish -> BatchNorm -> Linear(C -> C); forward gives the
    logits (the seed's softmax is applied by the loss, at its temperature)."""

    def __init__(self, in_features: int, num_classes: int):
        super().__init__(nn.Linear(in_features, num_classes), nn.SiLU(), keras_batch_norm(num_classes),
                         nn.Linear(num_classes, num_classes))
        self.apply(keras_init)


class CGDTF(nn.Module):
    """forward(x) -> (embedding, logits): trunk with its standard strides -> descriptors of ``gd_config``, each
    through Linear(C -> feature_dim / n, bias) + clipped L2 -> concatenation + clipped L2 (the embedding); the
    auxiliary classifier reads the first descriptor's normalised branch, as the seed's reads its S branch."""

    def __init__(self, backbone: str, gd_config: str, feature_dim: int, num_classes: int, pretrained: bool):
        super().__init__()
        check_descriptors(gd_config, feature_dim)
        self.gd_config = gd_config
        self.trunk = build_trunk(backbone, pretrained)
        width = feature_dim // len(gd_config)
        self.heads = nn.ModuleList(nn.Linear(backbone_channels(backbone), width) for _ in gd_config)
        self.heads.apply(keras_init)
        self.classifier = AuxiliaryClassifier(width, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(x)  # (B, C, H/32, W/32)
        parts = [clipped_l2_normalize(head(DESCRIPTORS[letter](features)))
                 for letter, head in zip(self.gd_config, self.heads)]  # each (B, feature_dim / n), >= 1e-6
        embedding = clipped_l2_normalize(torch.cat(parts, dim=1))  # (B, feature_dim)
        return embedding, self.classifier(parts[0])  # logits (B, num_classes)


def feature_grid(trunk: nn.Module, image_size: int) -> tuple[int, int]:
    """(h, w) of the trunk's feature map for a square ``image_size`` input (one probe forward, no gradient)."""
    was_training = trunk.training
    trunk.eval()  # the probe must not move BatchNorm statistics
    with torch.no_grad():
        grid = tuple(trunk(torch.zeros(1, 3, image_size, image_size)).shape[2:])
    trunk.train(was_training)
    return grid


class ReferenceHead(nn.Module):
    """The seed's reference network: trunk -> 1x1 conv 512 (swish) -> 1x1 conv 128 (swish) -> flatten -> Dense
    1024 (swish) -> BatchNorm -> Dense feature_dim, not normalised (the seed's is not). forward(x) -> (embedding,
    logits), the auxiliary classifier reading the embedding, as the seed's.

    Flatten fixes the Dense layer to the feature grid of ``image_size``; an input of another size (the complexity
    stage counts at 224 px) is average-pooled to that grid first.
    """

    def __init__(self, backbone: str, feature_dim: int, num_classes: int, image_size: int, pretrained: bool):
        super().__init__()
        self.trunk = build_trunk(backbone, pretrained)
        self.grid = feature_grid(self.trunk, image_size)
        self.convs = nn.Sequential(nn.Conv2d(backbone_channels(backbone), 512, 1), nn.SiLU(),
                                   nn.Conv2d(512, 128, 1), nn.SiLU())
        self.dense = nn.Sequential(nn.Linear(128 * self.grid[0] * self.grid[1], 1024), nn.SiLU(),
                                   keras_batch_norm(1024), nn.Linear(1024, feature_dim))
        self.convs.apply(keras_init)
        self.dense.apply(keras_init)
        self.classifier = AuxiliaryClassifier(feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.trunk(x)  # (B, C, h, w)
        if tuple(features.shape[2:]) != self.grid:
            features = F.adaptive_avg_pool2d(features, self.grid)
        embedding = self.dense(torch.flatten(self.convs(features), 1))  # (B, feature_dim)
        return embedding, self.classifier(embedding)  # logits (B, num_classes)
