"""NormSoftmax (Zhai & Wu 2019): classification with cosine logits and a temperature, dense and binary features."""

from dataclasses import dataclass

import torch

from dmlbench.losses.normalized_softmax import normalized_softmax_loss
from dmlbench.methods.defaults import argmax_correct
from dmlbench.methods.method import Method
from dmlbench.methods.optimization import Optimization
from dmlbench.models.normsoftmax import NormSoftmax
from dmlbench.params.load import require


@dataclass(frozen=True)
class NormSoftmaxConfig:
    """The `normsoftmax:` section of params.yaml; the seed's values are in the README's params table."""

    feature_dim: int
    temperature: float
    classes_per_batch: int
    images_per_class: int
    lr: float
    momentum: float
    weight_decay: float
    warmup_epochs: int  # epochs first, that train only the embedding layer and the classifier
    epochs: int  # then this many epochs of the whole network
    lr_step_fraction: float  # StepLR every int(fraction x epochs) main epochs (seed: epochs // 2)
    lr_gamma: float
    train_resize: int
    train_crop: int
    test_resize: int
    test_crop: int

    def __post_init__(self) -> None:
        require(self.feature_dim >= 1, f"normsoftmax.feature_dim must be >= 1, got {self.feature_dim}")
        require(self.temperature > 0, f"normsoftmax.temperature must be > 0, got {self.temperature}")
        require(self.classes_per_batch >= 1 and self.images_per_class >= 1,
                f"normsoftmax.classes_per_batch ({self.classes_per_batch}) and normsoftmax.images_per_class "
                f"({self.images_per_class}) must be >= 1")
        require(self.lr > 0, f"normsoftmax.lr must be > 0, got {self.lr}")
        require(0 <= self.momentum < 1 and self.weight_decay >= 0,
                f"normsoftmax.momentum must be in [0, 1) and weight_decay >= 0, got {self.momentum}, "
                f"{self.weight_decay}")
        require(0 < self.lr_gamma <= 1, f"normsoftmax.lr_gamma must be in (0, 1], got {self.lr_gamma}")
        require(min(self.train_crop, self.test_crop) >= 16,
                f"normsoftmax crops ({self.train_crop}, {self.test_crop}) must be >= 16 px")
        require(self.epochs >= 0 and self.warmup_epochs >= 0,
                f"normsoftmax.epochs ({self.epochs}) and normsoftmax.warmup_epochs ({self.warmup_epochs}) "
                f"must be >= 0")
        require(0 < self.lr_step_fraction <= 1,
                f"normsoftmax.lr_step_fraction must be in (0, 1], got {self.lr_step_fraction}")
        require(self.train_crop <= self.train_resize and self.test_crop <= self.test_resize,
                f"normsoftmax crops ({self.train_crop}, {self.test_crop}) must not exceed their resizes "
                f"({self.train_resize}, {self.test_resize})")


def build_model(cfg: NormSoftmaxConfig, backbone: str, num_classes: int, pretrained: bool, seed: int
                ) -> NormSoftmax:
    """The NormSoftmax network for ``num_classes`` training classes (it draws nothing: ``seed`` unused)."""
    return NormSoftmax(backbone, cfg.feature_dim, num_classes, pretrained)


def loss(cfg: NormSoftmaxConfig, outputs: tuple[torch.Tensor, torch.Tensor], labels: torch.Tensor) -> dict:
    """Cross-entropy of the cosine logits over the temperature (the only term)."""
    classification = normalized_softmax_loss(outputs[1], labels, cfg.temperature)
    return {"loss": classification, "classification": classification}


def build_optimizer(cfg: NormSoftmaxConfig, model: NormSoftmax) -> Optimization:
    """SGD with momentum and weight decay; a warm-up SGD over the head only; StepLR on the main phase."""
    def sgd(parameters):
        return torch.optim.SGD(parameters, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)

    optimizer = sgd(model.parameters())
    step = max(int(cfg.lr_step_fraction * cfg.epochs), 1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step, gamma=cfg.lr_gamma)
    warmup = sgd(model.head_parameters()) if cfg.warmup_epochs else None
    return Optimization(optimizer, scheduler, warmup, cfg.warmup_epochs)


# P x K batches (seed: 3 x 25), the resize/crop presets and the "2048-d" label: the defaults.
METHOD = Method(name="normsoftmax", config_cls=NormSoftmaxConfig, build_model=build_model, loss=loss,
                correct=argmax_correct, build_optimizer=build_optimizer, features=("dense", "binary"))
