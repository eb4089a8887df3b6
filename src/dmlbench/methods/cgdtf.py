"""CGD-TF (the TensorFlow seed of CGD): its CGD variant or its reference head, trained with the hard-aware
point-to-set loss or the soft-margin batch-hard triplet plus its auxiliary classifier's cross-entropy, P x K
batches over the seed's epoch length, Adam, pad-to-square images with the seed's augmentation."""

from collections import Counter
from dataclasses import dataclass
from typing import Literal

import torch
from torchvision import transforms as T

from dmlbench.data.cgdtf_augment import SeedAugmentation
from dmlbench.data.pad_square import PadToSquare
from dmlbench.data.sampler import PxKSampler
from dmlbench.data.transforms import to_network_input
from dmlbench.errors import DmlbenchError
from dmlbench.losses.hap2s import hap2s_loss
from dmlbench.losses.smoothed_ce import label_smoothed_cross_entropy
from dmlbench.losses.soft_batch_hard import soft_batch_hard_triplet
from dmlbench.methods.defaults import argmax_correct
from dmlbench.methods.method import Method
from dmlbench.methods.optimization import Optimization
from dmlbench.models.cgd import check_descriptors
from dmlbench.models.cgdtf import CGDTF, ReferenceHead
from dmlbench.params.load import require

LOSSES = {"hap2s": hap2s_loss, "batch_hard": soft_batch_hard_triplet}
# The seed's auxiliary classification loss: Keras's categorical cross-entropy on logits / 0.5 with label_smoothing
# 0.1 (targets (1 - 0.1) one-hot + 0.1 / classes), added 1:1 to the metric loss.
CLASSIFIER_TEMPERATURE = 0.5
CLASSIFIER_SMOOTHING = 0.1


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
    plateau_patience: int = 0  # > 0: lr x0.1 on the N-th epoch in a row without a better selection score (Keras's)
    stop_patience: int = 0  # > 0: stop after this many epochs without a better selection score (train.select)

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
    """The chosen network with its classifier over the ``num_classes`` training classes (it draws nothing from
    the run's seed: ``seed`` unused)."""
    if cfg.model == "cgd":
        return CGDTF(backbone, cfg.gd_config, cfg.feature_dim, num_classes, pretrained)
    return ReferenceHead(backbone, cfg.feature_dim, num_classes, cfg.image_size, pretrained)


def loss(cfg: CGDTFConfig, outputs: tuple[torch.Tensor, torch.Tensor], labels: torch.Tensor) -> dict:
    """The chosen metric loss on the embeddings + the classifier's smoothed cross-entropy at temperature 0.5, 1:1
    as the seed's Keras losses; each term logged under its name."""
    embedding, logits = outputs
    metric = LOSSES[cfg.loss](embedding, labels)
    classification = label_smoothed_cross_entropy(logits, labels, CLASSIFIER_SMOOTHING, CLASSIFIER_TEMPERATURE)
    return {"loss": metric + classification, cfg.loss: metric, "classification": classification}


def build_optimizer(cfg: CGDTFConfig, model: torch.nn.Module) -> Optimization:
    """Adam (Keras's defaults: betas 0.9/0.999, no weight decay), constant or x0.1 on a plateau of the selection
    Recall@1 (the seed's ReduceLROnPlateau watched the average ranking position on its test classes), with
    optional early stopping on the same score."""
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=1e-7)  # Keras's epsilon
    if cfg.plateau_patience:
        # Keras cuts the rate on the N-th epoch without a better score, PyTorch on the (patience + 1)-th; any
        # higher Recall@1 counts as better (threshold 0), as for the selection's best epoch.
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.1, threshold=0.0,
                                                               patience=cfg.plateau_patience - 1)
    else:
        scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    return Optimization(optimizer, scheduler, stop_patience=cfg.stop_patience)


def seed_epoch_length(labels: list[int], classes_per_batch: int, images_per_class: int) -> int:
    """The seed's batches per epoch: (classes // P) x (largest class // K); CARS196 at 12 x 8: 8 x (largest // 8)."""
    sizes = Counter(labels).values()
    return (len(sizes) // classes_per_batch) * (max(sizes, default=0) // images_per_class)


def batch_sampler(cfg: CGDTFConfig, labels: list[int], seed: int) -> PxKSampler:
    """P classes x K images per batch (seed: 12 x 8), the seed's epoch length; both losses need pairs."""
    p, k = cfg.classes_per_batch, cfg.images_per_class
    batches = seed_epoch_length(labels, p, k)
    if batches == 0 and len(set(labels)) >= p:  # fewer classes than P: the sampler's own check names the fix
        raise DmlbenchError(f"cgdtf's epoch of (classes // classes_per_batch) x (largest class // "
                            f"images_per_class) batches is 0: the largest training class has "
                            f"{max(Counter(labels).values())} images, fewer than images_per_class = {k}: "
                            f"lower cgdtf.images_per_class")
    return PxKSampler(labels, p, k, seed, require_pairs=True, num_batches=batches or None)


def train_transform(cfg: CGDTFConfig, norm) -> T.Compose:
    """Pad to a square -> Resize((s, s)) -> the seed's augmentation (0-2 of grayscale, scale, translate, rotate,
    shear; then a horizontal flip)."""
    return T.Compose([PadToSquare(), T.Resize((cfg.image_size, cfg.image_size)), SeedAugmentation(),
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


METHOD = Method(name="cgdtf", config_cls=CGDTFConfig, build_model=build_model, loss=loss, correct=argmax_correct,
                build_optimizer=build_optimizer, batch_sampler=batch_sampler, train_transform=train_transform,
                test_transform=test_transform, image_sizes=image_sizes, describe=describe)
