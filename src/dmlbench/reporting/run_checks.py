"""The values the tables stages read from metrics and complexity files, checked right after loading.

A file edited by hand or left by a broken run (``recall@1: NaN``, ``recall@1: 5.0``, ``epochs: -1``) would otherwise
be rendered into the README as a plausible number. The first value that is missing, of the wrong type or out of its
range stops the stage with one line naming the file, the key, the value and what is allowed; nothing is written.
"""

import math
import re
from pathlib import Path
from typing import Any, Callable

from dmlbench.errors import DmlbenchError
from dmlbench.reporting.tables import load_json_dir

RATE = re.compile(r"recall@[1-9][0-9]*|map@r|r_precision")  # fractions of queries: in [0, 1]
RUN_TEXT = ("method", "backbone", "dataset", "crop", "variant", "name", "digest", "recipe", "selection")
RUN_COUNTS = ("seed", "epochs")
RUN_OPTIONAL_COUNTS = ("warmup_epochs", "frozen_epochs", "selected_epoch")  # older files may lack them
PROVENANCE_TEXT = ("device", "device_name", "torch", "precision")
PROVENANCE_COUNTS = ("device_count", "cpu_threads")
PROVENANCE_OPTIONAL = {"cuda": str, "cudnn": int, "git_commit": str}  # null on a CPU, or outside git
CELL_TEXT = ("backbone", "dataset")
CELL_COUNTS = ("params", "macs_seed", "macs_thop")
# The fix for a bad file, by the folder it lies in; {stem} is the file's name without .json.
FIXES = {"runs": "delete it, or rerun dvc repro evaluate with the params of the run it records",
         "complexity": "delete it, or rerun dvc repro complexity with method: {stem}",
         "metrics": "delete it, or rerun its cell: dvc repro benchmarks/dvc.yaml:cell@{stem}"}


def load_checked_runs(folder: Path, need_recall_at_1: bool = False) -> list[dict]:
    """Every metrics file in ``folder`` (``load_json_dir``), each checked by ``check_run_record``."""
    return _load_checked(folder, lambda record, where: check_run_record(record, where, need_recall_at_1))


def load_checked_complexity(folder: Path) -> list[dict]:
    """Every complexity file in ``folder`` (``load_json_dir``), each checked by ``check_complexity_record``."""
    return _load_checked(folder, check_complexity_record)


def _load_checked(folder: Path, check: Callable[[dict, "Where"], None]) -> list[dict]:
    records = load_json_dir(folder)
    paths = sorted(Path(folder).glob("*.json"))  # the order load_json_dir reads them in
    fix = FIXES.get(Path(folder).name, "delete it, or rerun the stage that writes it")
    for path, record in zip(paths, records, strict=True):
        check(record, Where(path, fix.format(stem=path.stem)))
    return records


MISSING = object()  # a key the file lacks (its error line says "missing")


class Where:
    """A file being checked: turns a bad key into its one error line."""

    def __init__(self, path: Path, fix: str):
        self.path, self.fix = path, fix

    def fail(self, key: str, value: Any, allowed: str) -> None:
        shown = "missing" if value is MISSING else f"{value!r}"
        raise DmlbenchError(f"{self.path}: {key} is {shown}, not {allowed}: {self.fix}")


def check_run_record(record: dict, where: Where, need_recall_at_1: bool = False) -> None:
    """The run facts, metrics and provenance of one metrics file, as the recall and provenance tables read them."""
    run = _mapping(record, "run", where)
    for key in RUN_TEXT:
        _text(run, key, f"run.{key}", where)
    for key in RUN_COUNTS:
        _count(run, key, f"run.{key}", where)
    for key in RUN_OPTIONAL_COUNTS:
        if key in run:
            _count(run, key, f"run.{key}", where)
    _flag(run, "pretrained", "run.pretrained", where)
    metrics = _mapping(record, "metrics", where)
    if need_recall_at_1 and "recall@1" not in metrics:  # the grid's overview plots every cell's Recall@1
        where.fail("metrics.recall@1", MISSING, "a number in [0, 1]")
    _check_rates(metrics, "metrics", where)
    if record.get("provenance") is not None:  # runs trained before provenance was recorded have none
        _check_provenance(_mapping(record, "provenance", where), where)


def _check_rates(metrics: dict, prefix: str, where: Where) -> None:
    """Every Recall@K, MAP@R and R-Precision, dense ones and each extra feature's (e.g. metrics.binary)."""
    for key, value in metrics.items():
        if isinstance(value, dict) and prefix == "metrics":
            _check_rates(value, f"{prefix}.{key}", where)
        elif RATE.fullmatch(str(key)) and not (_is_number(value) and 0 <= value <= 1):
            where.fail(f"{prefix}.{key}", value, "a number in [0, 1]")


def _check_provenance(provenance: dict, where: Where) -> None:
    for key in PROVENANCE_TEXT:
        _text(provenance, key, f"provenance.{key}", where)
    for key in PROVENANCE_COUNTS:
        _count(provenance, key, f"provenance.{key}", where)
    _flag(provenance, "deterministic", "provenance.deterministic", where)
    for key, kind in PROVENANCE_OPTIONAL.items():
        value = provenance.get(key)
        if value is not None and (type(value) is not kind or value == ""):
            where.fail(f"provenance.{key}", value, f"null or a{'n integer' if kind is int else ' string'}")
    seconds = provenance.get("train_seconds", MISSING)
    if not (_is_number(seconds) and seconds >= 0):
        where.fail("provenance.train_seconds", seconds, "a number of seconds >= 0")


def check_complexity_record(record: dict, where: Where) -> None:
    """The method name and every grid cell's params and MACs (non-negative integers) of one complexity file."""
    _text(record, "method", "method", where)
    grid = record.get("grid", MISSING)
    if not isinstance(grid, list):
        where.fail("grid", grid, "a list of cells")
    for i, cell in enumerate(grid):
        if not isinstance(cell, dict):
            where.fail(f"grid[{i}]", cell, "a mapping")
        for key in CELL_TEXT:
            _text(cell, key, f"grid[{i}].{key}", where)
        for key in CELL_COUNTS:
            _count(cell, key, f"grid[{i}].{key}", where)


def _is_number(value: Any) -> bool:
    """A finite int or float; not a bool (JSON true would render as 100 %), not NaN or infinity."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _mapping(record: dict, key: str, where: Where) -> dict:
    value = record.get(key, MISSING)
    if not isinstance(value, dict):
        where.fail(key, value, "a mapping")
    return value


def _text(record: dict, key: str, name: str, where: Where) -> None:
    value = record.get(key, MISSING)
    if not (isinstance(value, str) and value):
        where.fail(name, value, "a non-empty string")


def _count(record: dict, key: str, name: str, where: Where) -> None:
    value = record.get(key, MISSING)
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        where.fail(name, value, "an integer >= 0")


def _flag(record: dict, key: str, name: str, where: Where) -> None:
    value = record.get(key, MISSING)
    if not isinstance(value, bool):
        where.fail(name, value, "true or false")
