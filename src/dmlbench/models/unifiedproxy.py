"""The UnifiedProxy network: trunk -> global max pooling -> (GoogLeNet: dropout in training) -> layer norm ->
Linear (no bias) -> L2, and the class proxies (unit Gaussian rows) its losses pull the embeddings towards."""

import torch
import torch.nn.functional as F
from torch import nn

from dmlbench.models.backbones import backbone_channels, backbone_entry, build_trunk
from dmlbench.models.frozen_bn import FrozenBatchNormStats


class UnifiedProxy(FrozenBatchNormStats, nn.Module):
    """forward(x) -> (embedding (B, feature_dim), L2-normalised; cosines to the L2-normalised proxies (B, classes)).

    The proxies (classes x feature_dim) are a bare Parameter of the model, so the optimizer, checkpoint, resume,
    model file and device moves all carry them; they are normalised where used, never in place.
    """

    def __init__(self, backbone: str, feature_dim: int, num_classes: int, pretrained: bool, freeze_bn: bool,
                 seed: int):
        super().__init__()
        self.freeze_bn = freeze_bn
        self.trunk = build_trunk(backbone, pretrained)
        self.pool = nn.AdaptiveMaxPool2d(1)  # a module, so thop sees it (max pooling counts 0 in either convention)
        # The seed replaced only the backbone's pooling and classifier, so GoogLeNet's Dropout(0.2) between them
        # stays in its training forward (ResNet-50 and BN-Inception have none: Dropout(0) is the identity).
        self.dropout = nn.Dropout(backbone_entry(backbone).pooled_dropout)
        self.embedding = nn.Linear(backbone_channels(backbone), feature_dim, bias=False)
        self.proxies = nn.Parameter(unit_gaussian_rows(num_classes, feature_dim, seed))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = torch.flatten(self.pool(self.trunk(x)), 1)  # (B, C)
        # The head runs in float32 even under autocast: the losses multiply cosines by alpha = 32, and bf16
        # cosines (8 significant bits) would put ~0.1 of noise into every logit. It is a tiny share of the work.
        # (The complexity stage counts on the meta device, which autocast does not know: its CPU context stands in.)
        with torch.autocast(device_type="cpu" if x.device.type == "meta" else x.device.type, enabled=False):
            pooled = self.dropout(pooled.float())
            # Layer norm without affine parameters: zero mean, unit variance per image (the seed's centring); its
            # shape a constant, so the ONNX export can trace it.
            normed = F.layer_norm(pooled, (self.embedding.in_features,))
            embedding = F.normalize(self.embedding(normed), dim=1)  # (B, feature_dim)
            cosines = embedding @ F.normalize(self.proxies, dim=1).T  # (B, classes)
        return embedding, cosines

    def head_parameters(self) -> list[nn.Parameter]:
        """The embedding layer and the proxies: what trains while the backbone is frozen."""
        return [self.embedding.weight, self.proxies]

    def frozen_bn_scope(self) -> nn.Module:
        return self.trunk


def unit_gaussian_rows(rows: int, dim: int, seed: int) -> torch.Tensor:
    """The seed lineage's proxy init: Gaussian rows scaled to unit length, drawn from a generator of the run's
    ``seed`` (so they do not depend on how many numbers the backbone's init drew).

    Unit length matters although the forward normalises: AdamP steps ~lr per coordinate whatever the norm, so a
    row of norm r turns ~1/r as fast; unnormalised rows (norm ~sqrt(dim), 22.6 at 512) would learn ~20x slower.
    """
    return F.normalize(torch.randn(rows, dim, generator=torch.Generator().manual_seed(seed)), dim=1)
