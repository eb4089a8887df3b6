"""Method registry: a method is a config dataclass plus model, loss, sampler and optimizer builders."""

from dataclasses import dataclass
from typing import Any, Callable

from dmlbench.methods import cgd, normsoftmax
from dmlbench.registry import get


@dataclass(frozen=True)
class Method:
    """Everything the generic train/embed stages need to know about one method."""

    name: str
    config_cls: type  # its params.yaml section's dataclass (.epochs; .warmup_epochs if it warms up)
    build_model: Callable[..., Any]  # (cfg, backbone, num_classes, pretrained) -> nn.Module
    loss: Callable[..., dict]  # (cfg, outputs, labels) -> {"loss": total, term: value, ...}
    build_optimizer: Callable[..., Any]  # (cfg, model) -> dmlbench.training.optimization.Optimization
    batch_sampler: Callable[..., Any]  # (cfg, labels, seed) -> batch sampler with set_epoch
    train_transform: Callable[..., Any]  # (cfg) -> callable PIL image -> tensor
    test_transform: Callable[..., Any]
    describe: Callable[..., str]  # (cfg) -> short variant label for tables, e.g. CGD's "SG"
    features: tuple[str, ...] = ("dense",)  # what evaluate ranks: dense (cosine) and/or binary (Hamming)


METHODS: dict[str, Method] = {
    "cgd": Method("cgd", cgd.CGDConfig, cgd.build_model, cgd.loss, cgd.build_optimizer,
                  cgd.batch_sampler, cgd.train_transform, cgd.test_transform, cgd.describe),
    "normsoftmax": Method("normsoftmax", normsoftmax.NormSoftmaxConfig, normsoftmax.build_model, normsoftmax.loss,
                          normsoftmax.build_optimizer, normsoftmax.batch_sampler, normsoftmax.train_transform,
                          normsoftmax.test_transform, normsoftmax.describe, features=("dense", "binary")),
}


def get_method(name: str) -> Method:
    """Look a method up by name (unknown names list the choices)."""
    return get(METHODS, name, "method")
