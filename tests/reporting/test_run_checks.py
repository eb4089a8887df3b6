"""reporting/run_checks.py: every value the tables read from a metrics or complexity file is checked, and a bad one
(NaN, a recall of 5.0, a negative count, a missing key) is one line naming the file and the key."""

import copy
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dmlbench.errors import DmlbenchError
from dmlbench.reporting.run_checks import load_checked_complexity, load_checked_runs
from dmlbench.reporting.tables import PUBLISHED

REPO = Path(__file__).resolve().parents[2]
RUN = {
    "run": {"method": "cgd", "backbone": "resnet18", "dataset": "synthetic", "crop": "uncropped", "variant": "SG",
            "name": "cgd-SG-resnet18-synthetic-uncropped-demo-s0-abcd1234", "digest": "abcd1234", "recipe": "demo",
            "selection": "last", "seed": 0, "epochs": 12, "warmup_epochs": 0, "frozen_epochs": 0,
            "selected_epoch": 12, "pretrained": False},
    "metrics": {"recall@1": 0.75, "recall@2": 0.875, "map@r": 0.25, "r_precision": 0.5,
                "binary": {"recall@1": 0.5, "map@r": 0.125, "r_precision": 0.25}},
    "provenance": {"device": "cpu", "device_name": "Some CPU", "device_count": 1, "cpu_threads": 2,
                   "torch": "2.4.1", "cuda": None, "cudnn": None, "git_commit": "0123456789abcdef",
                   "precision": "fp32", "deterministic": False, "train_seconds": 61.5},
}
COMPLEXITY = {"method": "cgd", "grid": [{"backbone": "resnet50", "dataset": "car", "params": 26858658,
                                         "macs_seed": 10644006912, "macs_thop": 10678398976}]}
FIX_RUNS = "delete it, or rerun dvc repro evaluate with the params of the run it records"


def write(folder: Path, name: str, record) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(record))  # allow_nan: json writes NaN / Infinity as a hand-edited file would
    return path


def changed(record: dict, key: str, value) -> dict:
    """``record`` with the dotted ``key`` set to ``value`` (or deleted when ``value`` is DELETE)."""
    record = copy.deepcopy(record)
    *parents, last = key.split(".")
    target = record
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return record


DELETE = object()


def test_good_files_load_unchanged_in_file_name_order(tmp_path):
    runs = tmp_path / "runs"
    write(runs, "b.json", RUN)
    write(runs, "a.json", changed(RUN, "metrics.recall@1", 1))  # an int 1 is a recall of 100 %
    assert load_checked_runs(runs) == [changed(RUN, "metrics.recall@1", 1), RUN]
    write(tmp_path / "complexity", "cgd.json", COMPLEXITY)
    assert load_checked_complexity(tmp_path / "complexity") == [COMPLEXITY]


def test_a_run_without_provenance_and_the_optional_epoch_counts_is_accepted(tmp_path):
    """Files written before provenance and the epoch splits were recorded still render (with dashes)."""
    record = changed(changed(RUN, "provenance", None), "run.selected_epoch", DELETE)
    write(tmp_path / "runs", "old.json", record)
    assert load_checked_runs(tmp_path / "runs") == [record]


@pytest.mark.parametrize("key, value, shown, allowed", [
    ("metrics.recall@1", math.nan, "nan", "a number in [0, 1]"),
    ("metrics.recall@1", 5.0, "5.0", "a number in [0, 1]"),
    ("metrics.recall@1", -0.25, "-0.25", "a number in [0, 1]"),
    ("metrics.recall@2", math.inf, "inf", "a number in [0, 1]"),
    ("metrics.recall@1", True, "True", "a number in [0, 1]"),
    ("metrics.recall@1", "0.5", "'0.5'", "a number in [0, 1]"),
    ("metrics.map@r", 1.5, "1.5", "a number in [0, 1]"),
    ("metrics.r_precision", None, "None", "a number in [0, 1]"),
    ("metrics.binary.recall@1", 2, "2", "a number in [0, 1]"),
    ("metrics.binary.map@r", -math.inf, "-inf", "a number in [0, 1]"),
    ("metrics", [0.5], "[0.5]", "a mapping"),
    ("run", DELETE, "missing", "a mapping"),
    ("run.epochs", -1, "-1", "an integer >= 0"),
    ("run.epochs", 12.5, "12.5", "an integer >= 0"),
    ("run.seed", "0", "'0'", "an integer >= 0"),
    ("run.warmup_epochs", math.nan, "nan", "an integer >= 0"),
    ("run.selected_epoch", -3, "-3", "an integer >= 0"),
    ("run.dataset", DELETE, "missing", "a non-empty string"),
    ("run.name", "", "''", "a non-empty string"),
    ("run.pretrained", "no", "'no'", "true or false"),
    ("provenance.train_seconds", math.nan, "nan", "a number of seconds >= 0"),
    ("provenance.train_seconds", -5, "-5", "a number of seconds >= 0"),
    ("provenance.device_count", 1.5, "1.5", "an integer >= 0"),
    ("provenance.deterministic", 1, "1", "true or false"),
    ("provenance.git_commit", 12345, "12345", "null or a string"),
    ("provenance.cudnn", "90100", "'90100'", "null or an integer"),
])
def test_a_bad_value_in_a_metrics_file_is_one_line_naming_file_and_key(tmp_path, key, value, shown, allowed):
    runs = tmp_path / "runs"
    write(runs, "a-good.json", RUN)
    bad = write(runs, "b-bad.json", changed(RUN, key, value))
    with pytest.raises(DmlbenchError) as err:
        load_checked_runs(runs)
    assert str(err.value) == f"{bad}: {key} is {shown}, not {allowed}: {FIX_RUNS}"


@pytest.mark.parametrize("key, value, shown, allowed", [
    ("grid.0.params", -1, "-1", "an integer >= 0"),
    ("grid.0.macs_seed", math.nan, "nan", "an integer >= 0"),
    ("grid.0.macs_thop", 1.5e10, "15000000000.0", "an integer >= 0"),
    ("grid.0.backbone", None, "None", "a non-empty string"),
    ("grid", {"a": 1}, "{'a': 1}", "a list of cells"),
    ("method", DELETE, "missing", "a non-empty string"),
])
def test_a_bad_value_in_a_complexity_file_is_one_line(tmp_path, key, value, shown, allowed):
    bad = write(tmp_path / "complexity", "cgd.json", changed(COMPLEXITY, key, value))
    with pytest.raises(DmlbenchError) as err:
        load_checked_complexity(tmp_path / "complexity")
    where = key.replace(".0.", "[0].")
    assert str(err.value) == (f"{bad}: {where} is {shown}, not {allowed}: delete it, or rerun dvc repro complexity "
                              f"with method: cgd")


def test_the_grid_needs_recall_at_1_for_its_overview(tmp_path):
    folder = tmp_path / "metrics"
    bad = write(folder, "cgd-resnet50-car-uncropped-s0.json", changed(RUN, "metrics.recall@1", DELETE))
    assert load_checked_runs(folder) == [changed(RUN, "metrics.recall@1", DELETE)]  # the README's tables: a dash
    with pytest.raises(DmlbenchError, match=re.escape(
            f"{bad}: metrics.recall@1 is missing, not a number in [0, 1]: delete it, or rerun its cell: "
            f"dvc repro benchmarks/dvc.yaml:cell@cgd-resnet50-car-uncropped-s0")):
        load_checked_runs(folder, need_recall_at_1=True)


def test_the_repositorys_own_metrics_files_pass():
    assert len(load_checked_runs(REPO / "metrics/runs")) == len(list((REPO / "metrics/runs").glob("*.json")))
    assert len(load_checked_complexity(REPO / "metrics/complexity")) >= 1


@pytest.mark.parametrize("value", [math.nan, 5.0])
def test_the_grid_tables_stage_refuses_a_bad_cell_and_writes_nothing(tmp_path, value):
    """stages/grid_tables.py as `dvc repro benchmarks/dvc.yaml:tables` runs it: one line, page and picture kept."""
    for name in ("stages", PUBLISHED):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    page = tmp_path / "benchmarks/README.md"
    page.write_text("before\n<!-- tables:start -->\nold\n<!-- tables:end -->\n")
    bad = write(tmp_path / "benchmarks/metrics", "cgd-resnet50-car-uncropped-s0.json",
                changed(changed(RUN, "metrics.recall@1", value), "run.dataset", "car"))
    result = subprocess.run([sys.executable, "stages/grid_tables.py"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines() == [
        f"dmlbench: error: {bad.relative_to(tmp_path)}: metrics.recall@1 is {value!r}, not a number in [0, 1]: "
        f"delete it, or rerun its cell: dvc repro benchmarks/dvc.yaml:cell@cgd-resnet50-car-uncropped-s0"]
    assert page.read_text() == "before\n<!-- tables:start -->\nold\n<!-- tables:end -->\n"
    assert not (tmp_path / "benchmarks/overview.png").exists()
