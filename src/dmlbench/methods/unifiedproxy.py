"""UnifiedProxy: trained class proxies with the proxy-anchor loss or dmlbench's balanced proxy loss, a frozen
backbone for the first epochs, AdamP with the proxies at their own learning rate, plain shuffled batches."""

from dataclasses import dataclass
from typing import Literal

import torch
from adamp import AdamP
from torchvision import transforms as T

from dmlbench.data.transforms import to_network_input
from dmlbench.losses.balanced_proxy import balanced_proxy_terms
from dmlbench.losses.proxy_anchor import proxy_anchor_loss
from dmlbench.methods.defaults import argmax_correct
from dmlbench.methods.method import Method
from dmlbench.methods.optimization import Optimization
from dmlbench.models.unifiedproxy import UnifiedProxy
from dmlbench.params.load import require

# AdamP's own hyper-parameters, its defaults, which the seed kept (no weight decay, so wd_ratio acts on nothing).
ADAMP = {"betas": (0.9, 0.999), "delta": 0.1, "wd_ratio": 0.1, "weight_decay": 0.0}


class AdamPAnyLayout(AdamP):
    """The authors' AdamP, whose per-channel and per-layer views also accept channels_last weights (train.
    channels_last): ``reshape`` copies where ``view`` fails. The projection only reads these views, so every step
    is AdamP's own (tested against a contiguous copy)."""

    def _channel_view(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.size(0), -1)

    def _layer_view(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(1, -1)


@dataclass(frozen=True)
class UnifiedProxyConfig:
    """The `unifiedproxy:` section of params.yaml; the seed's values are in the README's params table."""

    loss: Literal["balanced_proxy", "proxy_anchor"]
    feature_dim: int
    alpha: float  # the cosines' scale in both losses
    delta: float  # the proxy-anchor margin on the cosines
    freeze_bn: bool  # BatchNorm2d statistics frozen while training (seed: true; false to train from scratch)
    batch_size: int
    lr: float  # backbone and embedding layer
    proxy_lr: float  # the proxies' own learning rate (seed: 100 x lr)
    epochs: int
    frozen_epochs: int  # the first epochs train only the embedding layer and the proxies (the seed's warm_up)
    lr_step: int  # StepLR: lr x lr_gamma every lr_step epochs, frozen ones included
    lr_gamma: float
    train_crop: int  # RandomResizedCrop side
    test_resize: int  # Resize: the shorter side, keeping the aspect ratio
    test_crop: int

    def __post_init__(self) -> None:
        require(self.feature_dim >= 1, f"unifiedproxy.feature_dim must be >= 1, got {self.feature_dim}")
        require(self.alpha > 0, f"unifiedproxy.alpha must be > 0, got {self.alpha}")
        require(0 <= self.delta < 1, f"unifiedproxy.delta must be in [0, 1) (a margin on cosines), got {self.delta}")
        require(self.batch_size >= 2,
                f"unifiedproxy.batch_size must be >= 2 (one image cannot train BatchNorm), got {self.batch_size}")
        require(self.lr > 0, f"unifiedproxy.lr must be > 0, got {self.lr}")
        require(self.proxy_lr > 0, f"unifiedproxy.proxy_lr must be > 0, got {self.proxy_lr}")
        require(self.epochs >= 0, f"unifiedproxy.epochs must be >= 0, got {self.epochs}")
        require(0 <= self.frozen_epochs <= self.epochs,
                f"unifiedproxy.frozen_epochs must be in [0, epochs = {self.epochs}], got {self.frozen_epochs}")
        require(self.lr_step >= 1, f"unifiedproxy.lr_step must be >= 1 (epochs), got {self.lr_step}")
        require(0 < self.lr_gamma <= 1, f"unifiedproxy.lr_gamma must be in (0, 1], got {self.lr_gamma}")
        require(self.train_crop >= 16, f"unifiedproxy.train_crop must be >= 16 px, got {self.train_crop}")
        require(16 <= self.test_crop <= self.test_resize,
                f"unifiedproxy.test_crop must be in [16, test_resize = {self.test_resize}] px, got {self.test_crop}")


def build_model(cfg: UnifiedProxyConfig, backbone: str, num_classes: int, pretrained: bool, seed: int
                ) -> UnifiedProxy:
    """The network with ``num_classes`` proxies, drawn from the run's ``seed``."""
    return UnifiedProxy(backbone, cfg.feature_dim, num_classes, pretrained, cfg.freeze_bn, seed)


def loss(cfg: UnifiedProxyConfig, outputs: tuple[torch.Tensor, torch.Tensor], labels: torch.Tensor) -> dict:
    """The chosen loss on the proxy cosines; balanced_proxy also logs its two halves."""
    cosines = outputs[1]
    if cfg.loss == "proxy_anchor":
        anchor = proxy_anchor_loss(cosines, labels, cfg.alpha, cfg.delta)
        return {"loss": anchor, "proxy_anchor": anchor}
    return balanced_proxy_terms(cosines, labels, cfg.alpha, cfg.delta)


def build_optimizer(cfg: UnifiedProxyConfig, model: UnifiedProxy) -> Optimization:
    """AdamP: the proxies at proxy_lr (logged as lr_proxies), the rest at lr; StepLR per epoch through all epochs;
    the first frozen_epochs step only the embedding layer and the proxies."""
    rest = [p for name, p in model.named_parameters() if name != "proxies"]
    optimizer = AdamPAnyLayout([{"params": rest, "lr": cfg.lr},
                       {"params": [model.proxies], "lr": cfg.proxy_lr, "name": "proxies"}], **ADAMP)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
    return Optimization(optimizer, scheduler, frozen_epochs=cfg.frozen_epochs,
                        frozen_trainable=model.head_parameters())


def train_transform(cfg: UnifiedProxyConfig, norm) -> T.Compose:
    """RandomResizedCrop(train_crop) (torchvision's default scale and ratio ranges) -> horizontal flip."""
    return T.Compose([T.RandomResizedCrop(cfg.train_crop), T.RandomHorizontalFlip(), *to_network_input(norm)])


def test_transform(cfg: UnifiedProxyConfig, norm) -> T.Compose:
    """Resize(test_resize) of the shorter side, aspect ratio kept -> CenterCrop(test_crop)."""
    return T.Compose([T.Resize(cfg.test_resize), T.CenterCrop(cfg.test_crop), *to_network_input(norm)])


def image_sizes(cfg: UnifiedProxyConfig) -> dict[str, int]:
    """The crops the network sees, and the largest side the transforms resize to."""
    return {"train": cfg.train_crop, "test": cfg.test_crop, "resize": max(cfg.train_crop, cfg.test_resize)}


def describe(cfg: UnifiedProxyConfig) -> str:
    """The loss; "balanced_proxy.dmlbench" says the balanced formula is dmlbench's, not the seed's (unpublished)."""
    return "proxy_anchor" if cfg.loss == "proxy_anchor" else "balanced_proxy.dmlbench"


# Shuffled batches of batch_size, the last partial one kept (the seed's shuffled DataLoader): the default.
METHOD = Method(name="unifiedproxy", config_cls=UnifiedProxyConfig, build_model=build_model, loss=loss,
                correct=argmax_correct, build_optimizer=build_optimizer, train_transform=train_transform,
                test_transform=test_transform, image_sizes=image_sizes, describe=describe)
