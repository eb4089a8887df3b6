"""The README's demo rows from one command: ``python -m dmlbench.demo_rows``.

``benchmarks/demo_rows.yaml`` lists each row as values set on top of params.yaml (as ``dvc exp run -S`` would).
For each row this writes params.yaml with its values and runs ``dvc repro dvc.yaml``; the row that changes nothing
runs last, and params.yaml is put back as it was whatever happens, so the workspace ends where it started. The
persisted outputs (models/, metrics/runs/) keep every row's run; a finished row's train stage resumes its finished
checkpoint instead of training again, so a second call after a failure redoes only what is missing.
"""

import copy
import subprocess
from pathlib import Path
from typing import Any, Callable

import yaml

from dmlbench import atomic
from dmlbench.errors import DmlbenchError
from dmlbench.pipeline.experiment import load_experiment

ROWS_FILE = Path("benchmarks/demo_rows.yaml")
PARAMS = Path("params.yaml")


def read_rows(path: Path = ROWS_FILE) -> dict[str, dict[str, Any]]:
    """The rows of ``path``: name -> {dotted key: value}, the row without changes last."""
    rows = (yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}).get("rows")
    if not isinstance(rows, dict) or not rows:
        raise DmlbenchError(f"{path}: needs `rows:`, a mapping of row name -> {{key: value}}")
    for name, sets in rows.items():
        if not isinstance(sets, dict):
            raise DmlbenchError(f"{path}: row {name} must be a mapping of key -> value, got {sets!r}")
    return dict(sorted(rows.items(), key=lambda item: not item[1]))  # stable: only the empty row moves


def row_params(base: dict, sets: dict[str, Any], row: str, path: Path = ROWS_FILE) -> dict:
    """``base`` (params.yaml) with the row's values set; a key that names no section of it is refused."""
    params = copy.deepcopy(base)
    for key, value in sets.items():
        section, _, field = str(key).partition(".")
        if not field:
            params[section] = value
        elif isinstance(params.get(section), dict):
            params[section][field] = value
        else:
            raise DmlbenchError(f"{path}: row {row} sets {key}, but params.yaml has no section {section!r}")
    return params


def check_rows(base: dict, rows: dict[str, dict], path: Path = ROWS_FILE) -> dict[str, dict]:
    """Every row's params, validated before anything runs: a typo stops here, not after hours of training."""
    checked = {}
    for name, sets in rows.items():
        params = row_params(base, sets, name, path)
        try:
            load_experiment(params)
        except DmlbenchError as exc:
            raise DmlbenchError(f"{path}: row {name}: {exc}") from None
        checked[name] = params
    return checked


def dvc_repro() -> int:
    """The demo pipeline, as `dvc repro dvc.yaml` runs it (its output streams to the console)."""
    return subprocess.run(["dvc", "repro", "dvc.yaml"], check=False).returncode


def run_rows(names: list[str], rows_path: Path = ROWS_FILE, repro: Callable[[], int] = dvc_repro) -> None:
    """Run the rows ``names`` (all when empty) in the file's order; params.yaml is restored at the end."""
    rows = read_rows(rows_path)
    unknown = [n for n in names if n not in rows]
    if unknown:
        raise DmlbenchError(f"no demo row {unknown[0]!r} in {rows_path} (rows: {', '.join(rows)})")
    original = PARAMS.read_text(encoding="utf-8")
    checked = check_rows(yaml.safe_load(original), rows, rows_path)
    chosen = [n for n in rows if not names or n in names]
    try:
        for number, name in enumerate(chosen, 1):
            print(f"demo rows: {number}/{len(chosen)} {name}: {rows[name] or 'params.yaml as it is'}", flush=True)
            atomic.write_text(PARAMS, yaml.safe_dump(checked[name], sort_keys=False))
            status = repro()
            if status != 0:
                raise DmlbenchError(f"demo row {name}: dvc repro failed (exit status {status}; its output is above); "
                                    f"the rows before it are kept: rerun with --only {' '.join(chosen[number - 1:])}")
    finally:
        atomic.write_text(PARAMS, original)
