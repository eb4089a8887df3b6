"""The validation-tuned sweep: the same number of trials for every method, chosen without the test set.

``sweeps/params.yaml`` holds what every trial shares (``base``: the sweep's own small synthetic dataset and
``train.select: best_val``), the budget (trials per method), the seed that draws them, and per method its section
and its search space (a list of values per key). ``python -m dmlbench.sweep write`` draws each method's trials:
the space's combinations in a seeded random order, the first ``budget`` of them (random search without
replacement), written under ``trials:`` because DVC's ``foreach`` reads one dict. A trial's params are ``base``,
then the method's section with the trial's values, then ``method`` and ``recipe: sweep``.
"""

import copy
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from dmlbench import atomic
from dmlbench.errors import DmlbenchError
from dmlbench.identity import RunPaths
from dmlbench.methods import METHODS, get_method
from dmlbench.params.load import flow_yaml

SWEEP_PARAMS = Path("sweeps/params.yaml")
SWEEP_RAW = Path("sweeps/raw")  # the sweep's synthetic dataset, in CUB's raw layout
SWEEP_PREPARED = Path("sweeps/prepared")  # its prepared folder
TRIALS_DIR = Path("sweeps/trials")  # <method>/<trial>/: model, provenance, trial.json, logs (no test-set file)
TUNED_DIR = Path("sweeps/tuned")  # <method>/: the chosen trial's test embeddings
SWEEP_METRICS = Path("sweeps/metrics")  # <method>.json: the chosen trial's test metrics and the sweep's facts
SWEEP_CHECKPOINTS = Path("sweeps/checkpoints")  # resume scratch files, git-ignored, never cached
TUNING_DOC = Path("docs/tuning.md")  # holds the generated "tuned on validation" tables
RECIPE_LABEL = "sweep"
GENERATED = "\n# Below: written by `python -m dmlbench.sweep write`"
SPEC_KEYS = {"budget", "seed", "base", "methods"}
METHOD_KEYS = {"section", "space"}


def read_sweep(path: Path = SWEEP_PARAMS) -> dict:
    """sweeps/params.yaml, its hand-written part checked (one line per problem)."""
    if not Path(path).is_file():
        raise DmlbenchError(f"{path} not found: the sweep's params file (see docs/tuning.md)")
    sweep = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    unknown = set(sweep) - SPEC_KEYS - {"trials"}
    if unknown or not SPEC_KEYS <= set(sweep):
        raise DmlbenchError(f"{path}: needs {sorted(SPEC_KEYS)} (and the generated trials), got {sorted(sweep)}")
    budget = sweep["budget"]
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        raise DmlbenchError(f"{path}: budget (trials per method) must be an integer >= 1, got {budget!r}")
    for method, entry in (sweep["methods"] or {}).items():
        _check_method(path, method, entry, budget)
    return sweep


def _check_method(path: Path, method: str, entry: Any, budget: int) -> None:
    if method not in METHODS:
        raise DmlbenchError(f"{path}: unknown method {method!r} under methods (known: {', '.join(METHODS)})")
    if not isinstance(entry, dict) or set(entry) - METHOD_KEYS or not isinstance(entry.get("space"), dict):
        raise DmlbenchError(f"{path}: methods.{method} must hold `space` (a list of values per key) and may hold "
                            f"`section`")
    fields = set(get_method(method).config_cls.__dataclass_fields__)
    for key, values in entry["space"].items():
        if key not in fields:
            raise DmlbenchError(f"{path}: methods.{method}.space.{key} is not a {method} param (its section's keys: "
                                f"docs/methods/{method}.md)")
        if not isinstance(values, list) or not values:
            raise DmlbenchError(f"{path}: methods.{method}.space.{key} must be a non-empty list of values, "
                                f"got {values!r}")
    combinations = int(np.prod([len(v) for v in entry["space"].values()]))
    if combinations < budget:
        raise DmlbenchError(f"{path}: methods.{method}.space has {combinations} combinations, fewer than the budget "
                            f"of {budget} trials: add values, or lower budget (every method gets the same number)")


def draw_trials(sweep: dict) -> dict[str, dict]:
    """``budget`` trials per method: its space's combinations in an order drawn with ``seed``, the first ones."""
    trials = {}
    for method, entry in sorted(sweep["methods"].items()):
        keys = sorted(entry["space"])
        combos = list(itertools.product(*(entry["space"][k] for k in keys)))
        order = np.random.default_rng(sweep["seed"]).permutation(len(combos))[:sweep["budget"]]
        for number, index in enumerate(order):
            values = dict(zip(keys, combos[int(index)]))
            trials[f"{method}-t{number}"] = {"method": method, "trial": number, "set": values,
                                             "changes": ", ".join(f"{k}={v}" for k, v in values.items())}
    return trials


def trial_params(sweep: dict, trial: dict) -> dict[str, Any]:
    """The full params.yaml-shaped dict of ``trial``: base, then its method's section with the trial's values."""
    params = copy.deepcopy(sweep["base"])
    section = copy.deepcopy(sweep["methods"][trial["method"]].get("section") or {})
    section.update(trial["set"])
    params[trial["method"]] = section
    params.update(method=trial["method"], recipe=RECIPE_LABEL)
    return params


def check_trials_current(sweep: dict, path: Path = SWEEP_PARAMS) -> None:
    """Refuse a ``trials:`` block that budget, seed and the spaces no longer give (edited without rewriting it)."""
    if (sweep.get("trials") or {}) != draw_trials(sweep):
        raise DmlbenchError(f"{path}: the trials block is not what budget, seed and the spaces draw (edited since "
                            f"it was written): run python -m dmlbench.sweep write")


def load_trial(name: str, path: Path = SWEEP_PARAMS) -> tuple[dict, dict]:
    """(the full params, the ``trials:`` entry) of the trial ``name``."""
    sweep = read_sweep(path)
    check_trials_current(sweep, path)
    trials = sweep.get("trials") or {}
    if name not in trials:
        raise DmlbenchError(f"no trial {name!r} in {path}: run python -m dmlbench.sweep write after editing it")
    return trial_params(sweep, trials[name]), trials[name]


def trial_paths(method: str, name: str) -> RunPaths:
    """Where a trial keeps its files (sweeps/dvc.yaml declares the folder); its test embeddings and metrics, which
    only the method's chosen trial gets (the tuned stage), go under sweeps/tuned/ and sweeps/metrics/."""
    folder = TRIALS_DIR / method / name
    return RunPaths(model=folder / "model.pt", checkpoint=SWEEP_CHECKPOINTS / name / "train.pt",
                    embeddings=TUNED_DIR / method / "embeddings.pt", metrics=SWEEP_METRICS / f"{method}.json")


def write_sweep(path: Path = SWEEP_PARAMS) -> str:
    """Rewrite the generated ``trials`` block of ``path`` (the text before it is kept)."""
    text = Path(path).read_text(encoding="utf-8")
    head = text.split(GENERATED, 1)[0].rstrip("\n") + "\n"
    sweep = read_sweep(path)
    trials = draw_trials(sweep)
    lines = [GENERATED.strip() + " from budget, seed and each method's space; edit those.", "trials:"]
    lines += [f"  {name}: {flow_yaml(trial)}" for name, trial in trials.items()]
    updated = head + "\n".join(lines) + "\n"
    atomic.write_text(path, updated)
    return updated
