"""CGD-TF (the TensorFlow seed of CGD): its CGD variant or its reference head, trained with the hard-aware
point-to-set loss or the soft-margin batch-hard triplet, P x K batches, Adam, pad-to-square images."""

from dataclasses import dataclass
from typing import Literal

import torch
from torchvision import transforms as T

from dmlbench.config import require
from dmlbench.data.pad_square import PadToSquare
from dmlbench.data.sampler import PxKSampler
from dmlbench.data.transforms import to_network_input
from dmlbench.losses.hap2s import hap2s_loss
from dmlbench.losses.soft_batch_hard import soft_batch_hard_triplet
from dmlbench.methods.method import Method
from dmlbench.models.cgd import check_descriptors
from dmlbench.models.cgdtf import CGDTF, ReferenceHead
from dmlbench.training.optimization import Optimization

LOSSES = {"hap2s": hap2s_loss, "batch_hard": soft_batch_hard_triplet}


@dataclass(frozen=True)
class CGDTFConfig:
    """The `cgdtf:` section of params.yaml; the seed's values are in the README's params table."""

    model: Literal["cgd", "reference"]
    loss: Literal["hap2s", "batch_hard"]
    gd_config: str  # the cgd model's descriptors (seed's best: S); the reference model ignores it
    feature_dim: int  # cgd: split equally between the descriptors; reference: the last Dense layer
    classes_per_batch: int
    images_per_class: int
    lr: float  # Adam
    epochs: int
    image_size: int  # the padded square is resized to image_size x image_size, in training and testing
    plateau_patience: int = 0  # > 0: lr x0.1 after this many epochs without a better selection R@1 (train.select)
    stop_patience: int = 0  # > 0: stop after this many epochs without a better selection R@1 (train.select)

    def __post_init__(self) -> None:
        if self.model == "cgd":
            check_descriptors(self.gd_config, self.feature_dim)  # at stage start, not at model build
        require(self.feature_dim >= 1, f"cgdtf.feature_dim must be >= 1, got {self.feature_dim}")
        require(self.classes_per_batch >= 2 and self.images_per_class >= 2,
                f"cgdtf.classes_per_batch ({self.classes_per_batch}) and cgdtf.images_per_class "
                f"({self.images_per_class}) must be >= 2: both losses need positives and negatives")
        require(self.lr > 0, f"cgdtf.lr must be > 0, got {self.lr}")
        require(self.epochs >= 0, f"cgdtf.epochs must be >= 0, got {self.epochs}")
        require(self.image_size >= 16, f"cgdtf.image_size must be >= 16 px, got {self.image_size}")
        require(self.plateau_patience >= 0 and self.stop_patience >= 0,
                f"cgdtf.plateau_patience ({self.plateau_patience}) and cgdtf.stop_patience ({self.stop_patience}) "
                f"must be >= 0 (0: off)")


def build_model(cfg: CGDTFConfig, backbone: str, num_classes: int, pretrained: bool, seed: int
                ) -> torch.nn.Module:
    """The chosen network (no classifier: ``num_classes`` unused; it draws nothing: ``seed`` unused)."""
    if cfg.model == "cgd":
        return CGDTF(backbone, cfg.gd_config, cfg.feature_dim, pretrained)
    return ReferenceHead(backbone, cfg.feature_dim, cfg.image_size, pretrained)


def loss(cfg: CGDTFConfig, outputs: tuple[torch.Tensor, ...], labels: torch.Tensor) -> dict:
    """The chosen metric loss on the embeddings, logged under its name too."""
    value = LOSSES[cfg.loss](outputs[0], labels)
    return {"loss": value, cfg.loss: value}


def build_optimizer(cfg: CGDTFConfig, model: torch.nn.Module) -> Optimization:
    """Adam (Keras's defaults: betas 0.9/0.999, no weight decay), constant or x0.1 on a plateau of the selection
    Recall@1 (the seed's ReduceLROnPlateau watched its loss), with optional early stopping on the same score."""
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=1e-7)  # Keras's epsilon
    if cfg.plateau_patience:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.1,
                                                               patience=cfg.plateau_patience)
    else:
        scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    return Optimization(optimizer, scheduler, stop_patience=cfg.stop_patience)


def batch_sampler(cfg: CGDTFConfig, labels: list[int], seed: int) -> PxKSampler:
    """P classes x K images per batch (seed: 12 x 8); both losses need pairs."""
    return PxKSampler(labels, cfg.classes_per_batch, cfg.images_per_class, seed, require_pairs=True)


def train_transform(cfg: CGDTFConfig, norm) -> T.Compose:
    """Pad to a square -> Resize((s, s)) -> horizontal flip."""
    return T.Compose([PadToSquare(), T.Resize((cfg.image_size, cfg.image_size)), T.RandomHorizontalFlip(),
                      *to_network_input(norm)])


def test_transform(cfg: CGDTFConfig, norm) -> T.Compose:
    """Pad to a square -> Resize((s, s))."""
    return T.Compose([PadToSquare(), T.Resize((cfg.image_size, cfg.image_size)), *to_network_input(norm)])


def image_sizes(cfg: CGDTFConfig) -> dict[str, int]:
    """The network sees image_size x image_size in training and testing."""
    return {"train": cfg.image_size, "test": cfg.image_size, "resize": cfg.image_size}


def describe(cfg: CGDTFConfig) -> str:
    """Model and loss: "S.hap2s" (the cgd model's descriptors), "reference.batch_hard"."""
    return f"{cfg.gd_config if cfg.model == 'cgd' else 'reference'}.{cfg.loss}"


METHOD = Method(name="cgdtf", config_cls=CGDTFConfig, build_model=build_model, loss=loss,
                build_optimizer=build_optimizer, batch_sampler=batch_sampler, train_transform=train_transform,
                test_transform=test_transform, image_sizes=image_sizes, describe=describe)
