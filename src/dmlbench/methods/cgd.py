"""CGD (Jun et al. 2019): combined global descriptors + smoothed CE on the first one + batch-hard triplet."""

from dataclasses import dataclass

import torch

from dmlbench.losses.smoothed_ce import label_smoothed_cross_entropy
from dmlbench.losses.triplet import batch_hard_triplet
from dmlbench.methods.defaults import argmax_correct, pxk_with_pairs
from dmlbench.methods.method import Method
from dmlbench.models.cgd import CGD, check_descriptors
from dmlbench.params.load import require


@dataclass(frozen=True)
class CGDConfig:
    """The `cgd:` section of params.yaml; the seed's values are in the README's params table."""

    gd_config: str
    feature_dim: int
    smoothing: float
    temperature: float
    margin: float
    freeze_bn: bool  # BatchNorm2d statistics frozen while training (seed: true; false to train from scratch)
    classes_per_batch: int
    images_per_class: int
    lr: float
    epochs: int
    lr_milestones: tuple[float, ...]  # fractions of `epochs` where lr is multiplied by lr_gamma
    lr_gamma: float
    train_resize: int
    train_crop: int
    test_resize: int

    def __post_init__(self) -> None:
        check_descriptors(self.gd_config, self.feature_dim)  # at stage start, not at model build
        require(self.feature_dim >= len(self.gd_config),
                f"cgd.feature_dim must be >= the {len(self.gd_config)} descriptor(s), got {self.feature_dim}")
        require(self.epochs >= 0, f"cgd.epochs must be >= 0, got {self.epochs}")
        require(self.margin >= 0, f"cgd.margin must be >= 0, got {self.margin}")
        require(0 < self.lr_gamma <= 1, f"cgd.lr_gamma must be in (0, 1], got {self.lr_gamma}")
        require(min(self.train_crop, self.test_resize) >= 16,
                f"cgd.train_crop ({self.train_crop}) and cgd.test_resize ({self.test_resize}) must be >= 16 px")
        require(0.0 <= self.smoothing < 1.0, f"cgd.smoothing must be in [0, 1), got {self.smoothing}")
        require(self.classes_per_batch >= 2 and self.images_per_class >= 2,
                f"cgd.classes_per_batch ({self.classes_per_batch}) and cgd.images_per_class "
                f"({self.images_per_class}) must be >= 2: batch-hard triplet needs positives and negatives")
        require(self.temperature > 0, f"cgd.temperature must be > 0, got {self.temperature}")
        require(self.lr > 0, f"cgd.lr must be > 0, got {self.lr}")
        require(self.train_crop <= self.train_resize,
                f"cgd.train_crop ({self.train_crop}) must be <= cgd.train_resize ({self.train_resize})")
        require(all(0 < m <= 1 for m in self.lr_milestones),
                f"cgd.lr_milestones must be fractions in (0, 1], got {list(self.lr_milestones)}")


def build_model(cfg: CGDConfig, backbone: str, num_classes: int, pretrained: bool, seed: int) -> CGD:
    """The CGD network for ``num_classes`` training classes (it draws nothing: ``seed`` unused)."""
    return CGD(backbone, cfg.gd_config, cfg.feature_dim, num_classes, pretrained, cfg.freeze_bn)


def loss(cfg: CGDConfig, outputs: tuple[torch.Tensor, torch.Tensor], labels: torch.Tensor) -> dict:
    """Classification + triplet, 1:1 (the seed's weighting)."""
    embedding, logits = outputs
    classification = label_smoothed_cross_entropy(logits, labels, cfg.smoothing, cfg.temperature)
    triplet = batch_hard_triplet(embedding, labels, cfg.margin)
    return {"loss": classification + triplet, "classification": classification, "triplet": triplet}


def describe(cfg: CGDConfig) -> str:
    """The descriptor order, as the seed's tables label a model: ResNet50(SG)."""
    return cfg.gd_config


# Adam + MultiStepLR, the ImageNet-style resize/crop presets: the defaults.
METHOD = Method(name="cgd", config_cls=CGDConfig, build_model=build_model, loss=loss, correct=argmax_correct,
                batch_sampler=pxk_with_pairs, describe=describe)
