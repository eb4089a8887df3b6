"""What every stage script shares: params loading, experiment validation, one-line errors."""

import sys
from pathlib import Path
from typing import Any, Callable

from dmlbench.config import build, load_params
from dmlbench.errors import DmlbenchError
from dmlbench.sections import Experiment

EXPERIMENT_KEYS = ("method", "backbone", "dataset", "crop", "seed")


def experiment(params: dict[str, Any]) -> Experiment:
    """The top-level params as an Experiment, with method/backbone/dataset names checked."""
    from dmlbench.data.readers import READERS
    from dmlbench.methods import METHODS
    from dmlbench.models.backbones import BACKBONES
    from dmlbench.registry import get

    exp = build(Experiment, {k: params.get(k) for k in EXPERIMENT_KEYS}, "")
    get(METHODS, exp.method, "method")
    get(BACKBONES, exp.backbone, "backbone")
    get(READERS, exp.dataset, "dataset")
    return exp


def method_config(params: dict[str, Any], exp: Experiment):
    """The method and its validated params section (named after the method)."""
    from dmlbench.config import section
    from dmlbench.methods import get_method

    method = get_method(exp.method)
    return method, section(params, exp.method, method.config_cls)


def prepared_dir(exp: Experiment) -> Path:
    """data/prepared/<dataset>-<crop>: must match the prepare stage's out in dvc.yaml."""
    return Path("data/prepared") / f"{exp.dataset}-{exp.crop}"


def run(stage: Callable[[dict[str, Any]], None]) -> None:
    """Run ``stage(params)``; a DmlbenchError becomes one line on stderr and exit status 2."""
    try:
        stage(load_params())
    except DmlbenchError as exc:
        print(f"dmlbench: error: {exc}", file=sys.stderr)
        sys.exit(2)
