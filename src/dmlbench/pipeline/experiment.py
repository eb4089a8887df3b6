"""params.yaml -> ExperimentParams: every section validated and cross-checked once, so a bad param stops the first
stage before any output is touched and no later code builds a section again."""

from pathlib import Path
from typing import Any

from dmlbench.data.manifest import eval_splits, read_manifest
from dmlbench.data.protocol import recall_ks, train_classes
from dmlbench.data.readers import READERS
from dmlbench.errors import DmlbenchError
from dmlbench.methods import METHODS, get_method
from dmlbench.models.backbones import BACKBONES
from dmlbench.params.experiment import EXPERIMENT_KEYS, Experiment, ExperimentParams
from dmlbench.params.load import build, check_top_level, load_params, method_section, section
from dmlbench.params.sections import SECTIONS
from dmlbench.registry import get


def load_experiment(params: dict[str, Any]) -> ExperimentParams:
    """Validate all of params.yaml (top-level names, every section, every method's section for every dataset, the
    cross-checks between sections) into the one object the stages use."""
    check_top_level(params, {*EXPERIMENT_KEYS, *SECTIONS, *METHODS})
    sections = {name: section(params, name, cls) for name, cls in SECTIONS.items()}
    # Every method section is checked for every dataset, not only the current one's: a typo fails now.
    checked = {name: {dataset: method_config(params, name, dataset)[1] for dataset in READERS}
               for name in METHODS if name in params}
    exp = experiment(params)
    method = get_method(exp.method)
    configs = checked.get(exp.method) or {exp.dataset: method_config(params, exp.method, exp.dataset)[1]}
    config = configs[exp.dataset]
    check_input_side(sections["prepare"].max_side, method, config, exp.method)
    for backbone in sections["complexity"].backbones:
        get(BACKBONES, backbone, "backbone in complexity.backbones")
    for dataset in sections["complexity"].datasets:
        train_classes(dataset)
    asked = sections["evaluate"].recall_ks
    ks, source = (asked, "params") if asked else (recall_ks(exp.dataset), "dataset")
    return ExperimentParams(exp, method, config, configs, tuple(ks), source, **sections)


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


def check_input_side(max_side: int | None, method, cfg, name: str) -> None:
    """Refuse prepared images smaller than what the method's transforms resize to: they would be upsampled."""
    side = method.image_sizes(cfg)["resize"]
    if max_side is not None and max_side < side:
        raise DmlbenchError(f"params.yaml: prepare.max_side is {max_side} but {name} resizes images to {side} px "
                            f"(Resize((r, r)) stretches the short side to r too), so every image would be upsampled: "
                            f"set prepare.max_side to at least {side}, or null to keep the originals")


def check_ks_fit(xp: ExperimentParams, prepared: Path) -> None:
    """Refuse a K larger than what each query can retrieve in the prepared evaluation split, before training:
    otherwise evaluate would fail only after a model was trained (and embedded) for nothing."""
    sizes = {split: len(read_manifest(prepared / f"{split}.csv")) for split in eval_splits(prepared)}
    candidates = sizes["test"] - 1 if "test" in sizes else sizes["gallery"]
    if max(xp.recall_ks) > candidates:
        dataset = xp.experiment.dataset
        where = ("evaluate.recall_ks" if xp.recall_ks_source == "params"
                 else f"the {dataset} K list (set evaluate.recall_ks)")
        raise DmlbenchError(f"Recall@{max(xp.recall_ks)} asked ({where}), but each query of {prepared} can "
                            f"retrieve only {candidates} images: lower the K list to at most {candidates}")


def load(path: str | Path = "params.yaml") -> ExperimentParams:
    """params.yaml read and validated: what a stage calls once."""
    return load_experiment(load_params(path))
