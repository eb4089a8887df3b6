"""The NormSoftmax network: trunk (standard strides) -> avgpool -> layer norm -> Linear -> L2; cosine classifier."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from dmlbench.models.backbones import backbone_channels, build_trunk


class CosineClassifier(nn.Module):
    """Logits = cosine between the (normalised) embedding and each L2-normalised class weight row, no bias.

    A module holding a bare Parameter, as the seed's: the 2020 thop rules count its FLOPs as 0.
    """

    def __init__(self, feature_dim: int, num_classes: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, feature_dim))
        # PyTorch's default Linear init, as the seed's. The scale matters although rows are normalised in forward:
        # a row's angular step under SGD scales with 1 / |w|^2, so the init sets each class's learning speed.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return embedding @ F.normalize(self.weight, dim=1).T


class NormSoftmax(nn.Module):
    """forward(x) -> (embedding (B, feature_dim), L2-normalised; cosine logits (B, num_classes))."""

    def __init__(self, backbone: str, feature_dim: int, num_classes: int, pretrained: bool):
        super().__init__()
        self.trunk = build_trunk(backbone, pretrained)
        self.pool = nn.AdaptiveAvgPool2d(1)  # a module, not .mean(): thop counts it, as in the seed's FLOPs
        self.embedding = nn.Linear(backbone_channels(backbone), feature_dim)
        self.classifier = CosineClassifier(feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = torch.flatten(self.pool(self.trunk(x)), 1)  # (B, C)
        # Layer norm without affine parameters (its shape a constant, so the ONNX export can trace it): zero
        # mean, unit variance per image, before the embedding layer.
        normed = F.layer_norm(pooled, (self.embedding.in_features,))
        embedding = F.normalize(self.embedding(normed), dim=1)
        return embedding, self.classifier(embedding)

    def head_parameters(self) -> list[nn.Parameter]:
        """The embedding layer and the classifier: what the warm-up epoch trains."""
        return [*self.embedding.parameters(), *self.classifier.parameters()]
