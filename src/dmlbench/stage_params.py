"""params.yaml -> the validated objects the stages use (experiment, method section, run), and the check of the
whole file that the pipeline's first stage runs, so a bad param stops everything before any output is touched."""

from pathlib import Path
from typing import Any

from dmlbench.config import build, check_top_level, method_section, section
from dmlbench.data.manifest import eval_splits, read_manifest
from dmlbench.data.protocol import recall_ks, train_classes
from dmlbench.data.readers import READERS
from dmlbench.errors import DmlbenchError
from dmlbench.identity import Experiment, Run, make_run
from dmlbench.methods import METHODS, get_method
from dmlbench.models.backbones import BACKBONES
from dmlbench.registry import get

from dmlbench.sections import SECTIONS, EvaluateConfig

EXPERIMENT_KEYS = ("method", "backbone", "dataset", "crop", "seed", "recipe")


def experiment(params: dict[str, Any]) -> Experiment:
    """The top-level params as an Experiment, with method/backbone/dataset names checked."""
    missing = [k for k in EXPERIMENT_KEYS if k not in params]
    if missing:
        raise DmlbenchError(f"params.yaml: top-level key {missing[0]!r} is missing: add it (see README, 'Params')")
    exp = build(Experiment, {k: params[k] for k in EXPERIMENT_KEYS}, "")
    get(METHODS, exp.method, "method")
    get(BACKBONES, exp.backbone, "backbone")
    get(READERS, exp.dataset, "dataset")
    return exp


def method_config(params: dict[str, Any], method_name: str, dataset: str):
    """The method and its validated section for ``dataset`` (its per_dataset overrides applied)."""
    method = get_method(method_name)
    return method, method_section(params, method_name, method.config_cls, dataset, READERS)


def current_run(params: dict[str, Any]) -> tuple[Experiment, Any, Any, Run]:
    """(experiment, method, its config, the run) that params.yaml describes now."""
    exp = experiment(params)
    method, cfg = method_config(params, exp.method, exp.dataset)
    return exp, method, cfg, make_run(exp, method.describe(cfg), cfg, params)


def checked_run(params: dict[str, Any]) -> tuple[Experiment, Any, Any, Run]:
    """Validate all of params.yaml (top-level names, every section, every method's section for every dataset it
    names, the cross-checks between sections) and return what ``current_run`` returns."""
    check_top_level(params, {*EXPERIMENT_KEYS, *SECTIONS, *METHODS})
    configs = {name: section(params, name, cls) for name, cls in SECTIONS.items()}
    for name in METHODS:
        if name in params:
            for dataset in READERS:
                method_config(params, name, dataset)
    exp, method, cfg, run = current_run(params)
    check_input_side(configs["prepare"].max_side, method, cfg, exp.method)
    for backbone in configs["complexity"].backbones:
        get(BACKBONES, backbone, "backbone in complexity.backbones")
    for dataset in configs["complexity"].datasets:
        train_classes(dataset)
    return exp, method, cfg, run


def check_params(params: dict[str, Any]) -> Run:
    """Validate all of params.yaml (``checked_run``); returns the current run."""
    return checked_run(params)[3]


def check_input_side(max_side: int | None, method, cfg, name: str) -> None:
    """Refuse prepared images smaller than what the method's transforms resize to: they would be upsampled."""
    side = method.image_sizes(cfg)["resize"]
    if max_side is not None and max_side < side:
        raise DmlbenchError(f"params.yaml: prepare.max_side is {max_side} but {name} resizes images to {side} px "
                            f"(Resize((r, r)) stretches the short side to r too), so every image would be upsampled: "
                            f"set prepare.max_side to at least {side}, or null to keep the originals")


def recall_ks_for(params: dict[str, Any], dataset: str) -> tuple[tuple[int, ...], str]:
    """The K list evaluate reports and where it comes from ("params" or "dataset")."""
    ecfg = section(params, "evaluate", EvaluateConfig)
    return (ecfg.recall_ks, "params") if ecfg.recall_ks else (recall_ks(dataset), "dataset")


def check_ks_fit(params: dict[str, Any], dataset: str, prepared: Path) -> None:
    """Refuse a K larger than what each query can retrieve in the prepared evaluation split, before training:
    otherwise evaluate would fail only after a model was trained (and embedded) for nothing."""
    ks, source = recall_ks_for(params, dataset)
    splits = eval_splits(prepared)
    sizes = {split: len(read_manifest(prepared / f"{split}.csv")) for split in splits}
    candidates = sizes["test"] - 1 if "test" in sizes else sizes["gallery"]
    if max(ks) > candidates:
        where = "evaluate.recall_ks" if source == "params" else f"the {dataset} K list (set evaluate.recall_ks)"
        raise DmlbenchError(f"Recall@{max(ks)} asked ({where}), but each query of {prepared} can retrieve only "
                            f"{candidates} images: lower the K list to at most {candidates}")
