"""LREC: an ensemble of learners on a shared stem, each classifying the training classes into its own randomly
drawn meta classes; the test embedding joins the learners' normalised logit vectors."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torchvision import transforms as T

from dmlbench.data.prepare import IMAGE_STATS
from dmlbench.data.transforms import to_network_input
from dmlbench.errors import DmlbenchError
from dmlbench.losses.meta_class_ce import meta_class_cross_entropy, meta_targets
from dmlbench.methods.method import Method
from dmlbench.models.backbones import Normalization
from dmlbench.models.lrec import LREC, stem_and_learners
from dmlbench.models.meta_classes import assign_meta_classes
from dmlbench.params.load import require


@dataclass(frozen=True)
class DatasetNormalization(Normalization):
    """A dataset's own mean/std (RGB in [0, 1]), as the seed normalised; its type proves the stages resolved it."""


@dataclass(frozen=True)
class LRECConfig:
    """The `lrec:` section of params.yaml; the seed's values are in the README's params table."""

    ensemble_size: int  # learners (seed 48)
    meta_classes: int  # per learner (seed: 12 CARS/CUB, 512 SOP, 192 In-shop)
    batch_size: int
    lr: float  # Adam
    epochs: int
    lr_milestones: tuple[float, ...]  # fractions of epochs where lr is multiplied by lr_gamma
    lr_gamma: float
    resize: Literal["shorter", "square"]  # Resize(r) of the shorter side (uncropped) or Resize((r, r)) (cropped)
    train_resize: int
    train_crop: int  # RandomCrop + flip
    test_resize: int
    test_crop: int  # CenterCrop
    normalization: Literal["backbone", "dataset"]  # the backbone's ImageNet mean/std, or the dataset's (seed)
    mean: tuple[float, float, float] | None = None  # dataset: these values (CARS: the seed's), or null: prepare's
    std: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        require(self.ensemble_size >= 1, f"lrec.ensemble_size must be >= 1, got {self.ensemble_size}")
        require(self.meta_classes >= 2, f"lrec.meta_classes must be >= 2, got {self.meta_classes}")
        require(self.batch_size >= 2,
                f"lrec.batch_size must be >= 2 (one image cannot train BatchNorm), got {self.batch_size}")
        require(self.lr > 0, f"lrec.lr must be > 0, got {self.lr}")
        require(self.epochs >= 0, f"lrec.epochs must be >= 0, got {self.epochs}")
        require(all(0 < m <= 1 for m in self.lr_milestones),
                f"lrec.lr_milestones must be fractions in (0, 1], got {list(self.lr_milestones)}")
        require(0 < self.lr_gamma <= 1, f"lrec.lr_gamma must be in (0, 1], got {self.lr_gamma}")
        require(16 <= self.train_crop <= self.train_resize,
                f"lrec.train_crop must be in [16, train_resize = {self.train_resize}] px, got {self.train_crop}")
        require(16 <= self.test_crop <= self.test_resize,
                f"lrec.test_crop must be in [16, test_resize = {self.test_resize}] px, got {self.test_crop}")
        require((self.mean is None) == (self.std is None),
                f"lrec.mean and lrec.std must both be set or both null, got {self.mean} and {self.std}")
        if self.std is not None:
            require(all(s > 0 for s in self.std), f"lrec.std must be > 0 per channel, got {list(self.std)}")


def build_model(cfg: LRECConfig, backbone: str, num_classes: int, pretrained: bool, seed: int) -> LREC:
    """The ensemble for ``num_classes`` training classes; its meta classes are drawn from the run's ``seed``."""
    meta_labels = assign_meta_classes(num_classes, cfg.meta_classes, cfg.ensemble_size, seed)
    return LREC(*stem_and_learners(backbone, pretrained, cfg.ensemble_size, cfg.meta_classes), meta_labels)


def loss(cfg: LRECConfig, outputs: tuple, labels: torch.Tensor) -> dict:
    """Cross-entropy of every learner against its meta labels, mean over batch and learners."""
    return {"loss": meta_class_cross_entropy(outputs[1], outputs[2], labels)}


def correct(cfg: LRECConfig, outputs: tuple, labels: torch.Tensor) -> torch.Tensor:
    """Correct meta-class predictions, averaged over learners (so accuracy = the learners' mean accuracy)."""
    hits = outputs[1].argmax(dim=2) == meta_targets(outputs[2], labels)
    return hits.sum() / hits.shape[1]


def normalization(cfg: LRECConfig, backbone_norm: Normalization, prepared: Path | Normalization) -> Normalization:
    """The input normalisation the transforms use: the backbone's, or the dataset's mean/std (the config's
    values, else what prepare measured on the training images, ``<prepared>/image_stats.json``; a query or an
    export passes the values the trained run recorded instead of the folder)."""
    if cfg.normalization == "backbone":
        return backbone_norm
    if isinstance(prepared, Normalization):
        return DatasetNormalization(prepared.mean, prepared.std)
    if cfg.mean is not None:
        return DatasetNormalization(tuple(cfg.mean), tuple(cfg.std))
    path = Path(prepared) / IMAGE_STATS
    try:
        stats = json.loads(path.read_text())
        return DatasetNormalization(tuple(stats["mean"]), tuple(stats["std"]))
    except (OSError, ValueError, KeyError, TypeError):
        raise DmlbenchError(f"lrec.normalization: dataset needs {path} (the training images' mean/std): rerun "
                            f"dvc repro prepare, or set lrec.mean and lrec.std") from None


def _checked(cfg: LRECConfig, norm: Normalization) -> Normalization:
    if cfg.normalization == "dataset" and not isinstance(norm, DatasetNormalization):
        raise DmlbenchError("lrec.normalization: dataset, but this stage passed the backbone's normalisation (it "
                            "does not call Method.normalization yet): set lrec.normalization: backbone")
    return norm


def _resize(cfg: LRECConfig, side: int) -> T.Resize:
    return T.Resize(side) if cfg.resize == "shorter" else T.Resize((side, side))


def train_transform(cfg: LRECConfig, norm: Normalization) -> T.Compose:
    """Resize (shorter side or square) -> RandomCrop(train_crop) -> flip."""
    return T.Compose([_resize(cfg, cfg.train_resize), T.RandomCrop(cfg.train_crop), T.RandomHorizontalFlip(),
                      *to_network_input(_checked(cfg, norm))])


def test_transform(cfg: LRECConfig, norm: Normalization) -> T.Compose:
    """Resize (shorter side or square) -> CenterCrop(test_crop)."""
    return T.Compose([_resize(cfg, cfg.test_resize), T.CenterCrop(cfg.test_crop),
                      *to_network_input(_checked(cfg, norm))])


def image_sizes(cfg: LRECConfig) -> dict[str, int]:
    """The crops the network sees, and the largest side the transforms resize to."""
    return {"train": cfg.train_crop, "test": cfg.test_crop, "resize": max(cfg.train_resize, cfg.test_resize)}


def describe(cfg: LRECConfig) -> str:
    """Learners x meta classes, e.g. 48x12."""
    return f"{cfg.ensemble_size}x{cfg.meta_classes}"


# Adam + MultiStepLR (the seed's milestones 0.5 and 0.7) and shuffled batches of batch_size, the last partial
# one kept (a last lone image joins the previous batch): the defaults.
METHOD = Method(name="lrec", config_cls=LRECConfig, build_model=build_model, loss=loss, correct=correct,
                train_transform=train_transform, test_transform=test_transform, image_sizes=image_sizes,
                describe=describe, normalization=normalization)
