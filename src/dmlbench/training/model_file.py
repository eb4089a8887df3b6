"""The trained-model file: weights plus everything needed to rebuild and check the model."""

import dataclasses
from pathlib import Path

import torch

from dmlbench import atomic
from dmlbench.config import plain
from dmlbench.errors import DmlbenchError
from dmlbench.sections import Experiment
from dmlbench.methods import Method


def save_model(path: Path, exp: Experiment, cfg, classes: list[int], model: torch.nn.Module) -> None:
    """Write weights and build arguments atomically."""
    atomic.save_torch(path, {
        "method": exp.method, "backbone": exp.backbone, "dataset": exp.dataset, "crop": exp.crop,
        "config": dataclasses.asdict(cfg), "classes": classes,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    })


def load_model(path: Path, exp: Experiment, method: Method, cfg) -> torch.nn.Module:
    """Rebuild the model from ``path``, refusing a file trained with other params than ``exp``/``cfg``."""
    if not Path(path).is_file():
        raise DmlbenchError(f"model file {path} not found: run the train stage first (dvc repro train)")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file; torch raises many types
        raise DmlbenchError(f"cannot read model file {path} ({type(exc).__name__}): rerun dvc repro train") from None
    wanted = {"method": exp.method, "backbone": exp.backbone, "dataset": exp.dataset, "crop": exp.crop,
              "config": dataclasses.asdict(cfg)}
    stale = [key for key, value in wanted.items() if plain(saved.get(key)) != plain(value)]
    if stale:
        raise DmlbenchError(f"model file {path} was trained with other params ({', '.join(stale)} differ): "
                            f"rerun dvc repro so train runs again")
    model = method.build_model(cfg, exp.backbone, len(saved["classes"]), pretrained=False)
    model.load_state_dict(saved["state_dict"])
    return model

