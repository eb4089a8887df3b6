"""Each method's chosen trial: the best validation score among its trials, read from their trial.json files."""

import json
from pathlib import Path

from dmlbench import atomic
from dmlbench.errors import DmlbenchError

TRIAL_FILE = "trial.json"  # beside a trial's model: its values and its validation scores (no test-set number)


def trial_record(name: str, trial: dict, training: dict) -> dict:
    """What trial.json holds: the trial, its values, and the selection facts of its model file."""
    metric = training["select_metric"]
    return {"trial": name, "method": trial["method"], "set": trial["set"], "select_metric": metric,
            "val_score": training["selected_scores"][metric], "val_scores": training["selected_scores"],
            "selected_epoch": training["selected_epoch"], "val_classes": len(training.get("val_classes", []))}


def write_trial_record(folder: Path, record: dict) -> None:
    atomic.write_json(folder / TRIAL_FILE, record)


def read_trials(folder: Path, names: list[str]) -> list[dict]:
    """The trial.json of every trial in ``names`` under ``folder`` (one line naming a missing one)."""
    records = []
    for name in names:
        path = folder / name / TRIAL_FILE
        if not path.is_file():
            raise DmlbenchError(f"{path} not found: run the trial first (dvc repro sweeps/dvc.yaml:trial@{name})")
        records.append(json.loads(path.read_text(encoding="utf-8")))
    return records


def choose(records: list[dict]) -> dict:
    """The trial with the best validation score; a tie goes to the earlier one in ``records`` (max keeps the
    first), the lower trial number."""
    if not records:
        raise DmlbenchError("no trials to choose from: set budget >= 1 in sweeps/params.yaml")
    metrics = {r["select_metric"] for r in records}
    if len(metrics) > 1:
        raise DmlbenchError(f"the trials were selected by different metrics ({sorted(metrics)}): rerun them with one "
                            f"train.select_metric")
    for r in records:
        score = r["val_score"]
        if not isinstance(score, (int, float)) or not 0 <= score <= 1:
            raise DmlbenchError(f"trial {r['trial']}: validation score {score!r} is not a number in [0, 1]: rerun it")
    return max(records, key=lambda r: r["val_score"])
