"""Every run of a workspace (metrics/runs/) or of the grid (benchmarks/metrics/) as one pandas DataFrame, a row per
metrics file: what the tables are made from, and what a notebook analyses.

Columns: the run's identity, how it was trained, a digest of its recorded params, its provenance, why it is stale
(reporting/staleness.py; empty when current), then each metric as a fraction with its 95 % interval:
``recall@1``, ``recall@1.low``, ``recall@1.high``, and a feature's (binary codes) as ``binary.recall@1``...
"""

import hashlib
import json
from pathlib import Path

import pandas as pd

from dmlbench.errors import DmlbenchError
from dmlbench.reporting.run_record import source_label
from dmlbench.reporting.staleness import staleness

IDENTITY = ("method", "variant", "backbone", "dataset", "crop", "recipe", "seed", "name", "digest")
FACTS = ("epochs", "warmup_epochs", "frozen_epochs", "selected_epoch", "pretrained", "selection")
# Frame column <- provenance key (provenance.py); a file from before provenance was recorded leaves them empty.
PROVENANCE = {"commit": "git_commit", "code_digest": "code_digest", "device": "device_name", "device_type": "device",
              "devices": "device_count", "cpu_threads": "cpu_threads", "torch": "torch", "cuda": "cuda",
              "cudnn": "cudnn", "precision": "precision", "deterministic": "deterministic",
              "train_seconds": "train_seconds"}
TEXT = ("method", "variant", "backbone", "dataset", "crop", "recipe", "name", "digest", "selection", "source",
        "params_digest", "commit", "code_digest", "device", "device_type", "torch", "cuda", "precision", "stale")
COUNTS = ("seed", "epochs", "warmup_epochs", "frozen_epochs", "selected_epoch", "devices", "cpu_threads", "cudnn",
          "queries", "gallery")
FLAGS = ("pretrained", "deterministic")
BOUNDS = ("low", "high")


def metric_column(feature: str, name: str) -> str:
    """The frame's column of metric ``name`` for ``feature``: 'recall@1' (dense), 'binary.recall@1'."""
    return name if feature == "dense" else f"{feature}.{name}"


def load_runs_frame(folder: Path, need_recall_at_1: bool = False) -> pd.DataFrame:
    """Every metrics file in ``folder``, checked (run_checks.load_checked_runs), as the runs frame."""
    from dmlbench.reporting.run_checks import load_checked_runs  # it imports tables, which import this module

    return runs_frame(load_checked_runs(folder, need_recall_at_1))


def runs_frame(records: list[dict]) -> pd.DataFrame:
    """One row per metrics file, sorted by run name and seed; numbers as fractions, absent values missing (NA)."""
    rows = [_row(r) for r in sorted(records, key=lambda r: (r["run"]["name"], r["run"]["seed"]))]
    fixed = [*IDENTITY, *FACTS, "source", "params_digest", *PROVENANCE, "queries", "gallery", "stale"]
    metrics = list(dict.fromkeys(c for row in rows for c in row if c not in fixed))
    return typed(pd.DataFrame(rows, columns=[*fixed, *metrics], dtype=object))


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Every column as its kind: text as strings, counts as nullable integers, flags as nullable booleans,
    the rest (metrics, bounds, train seconds) as floats. The CSV reader applies it too, so a digest of digits
    stays text."""
    kinds = {c: "string" if c in TEXT else "Int64" if c in COUNTS else "boolean" if c in FLAGS else "float64"
             for c in frame.columns}
    return frame.astype(kinds)


def write_runs_csv(frame: pd.DataFrame, path: Path) -> None:
    """The frame as CSV (full float precision, empty cells where a value is missing)."""
    frame.to_csv(path, index=False)


def read_runs_csv(path: Path) -> pd.DataFrame:
    """A CSV ``write_runs_csv`` wrote, back as the frame it came from."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])  # "NA" may be a variant
    for column in frame.columns:
        if column in FLAGS:
            frame[column] = frame[column].map({"True": True, "False": False})
        elif column not in TEXT:
            frame[column] = pd.to_numeric(frame[column])
    return typed(frame.astype(object))


def _row(record: dict) -> dict:
    run, prov = record["run"], record.get("provenance") or {}
    row = {k: run.get(k) for k in (*IDENTITY, *FACTS)}
    row["source"] = source_label(run)
    params = record.get("params")
    row["params_digest"] = (hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:8]
                            if params is not None else None)
    row.update({column: prov.get(key) for column, key in PROVENANCE.items()})
    row.update(queries=record.get("queries"), gallery=record.get("gallery"), stale=staleness(record))
    bounds = _intervals(record)
    for key, value in record["metrics"].items():
        for feature, name, number in ([(key, n, v) for n, v in value.items()] if isinstance(value, dict)
                                      else [("dense", key, value)]):
            column = metric_column(feature, name)
            row[column] = number
            for side, bound in zip(BOUNDS, bounds.get(column, (None, None))):
                row[f"{column}.{side}"] = bound
    return row


def _intervals(record: dict) -> dict[str, list[float]]:
    """The file's intervals by metric column; a malformed one stops with one line naming the run and the key."""
    found = {}
    top = _object(record, record, ["intervals"])
    bounds = _object(record, (top or {}).get("metrics"), ["intervals", "metrics"]) or {}
    features = {k for k, v in record["metrics"].items() if isinstance(v, dict)}
    for key, value in bounds.items():
        grouped = key in features or isinstance(value, dict)  # a feature's intervals (binary codes)
        inner = _object(record, value, ["intervals", "metrics", key]) if grouped else {key: value}
        for name, pair in (inner or {}).items():
            feature, path = (key, [key, name]) if grouped else ("dense", [name])
            if pair is not None:
                found[metric_column(feature, name)] = _pair(record, ["intervals", "metrics", *path], pair)
    return found


def _object(record: dict, value, path: list[str]) -> dict | None:
    value = value.get(path[-1]) if value is record else value
    if value is not None and not isinstance(value, dict):
        _malformed(record, path, value, "an object")
    return value


def _pair(record: dict, path: list[str], value) -> list[float]:
    if not (isinstance(value, list) and len(value) == 2 and all(_fraction(v) for v in value) and value[0] <= value[1]):
        _malformed(record, path, value, "[low, high] fractions with low <= high")
    return value


def _malformed(record: dict, path: list[str], value, allowed: str):
    raise DmlbenchError(f"the metrics file of run {record['run']['name']} holds {'.'.join(path)} = {value!r}, not "
                        f"{allowed}: delete it, or rerun dvc repro evaluate for that run")


def _fraction(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1
