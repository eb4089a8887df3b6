"""The grid's DVC pipeline end to end on a tiny synthetic grid of two cells: every cell and the tables, a one-cell
change reruns that cell and the tables only, a rerun gives the same metrics, and three clones sharing a DVC remote
split the grid (A runs cell 1, B cell 2, C pulls and only renders the tables) with C's tables equal to one machine's.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from dmlbench.data.synthetic import write_synthetic
from dmlbench.provenance import without_timings
from dmlbench.reporting.tables import PUBLISHED

REPO = Path(__file__).resolve().parents[1]
CELL_1, CELL_2 = "cgd-resnet18-synthetic-uncropped-s0", "cgd-resnet18-synthetic-uncropped-margin_0p2-s0"
RECIPE = {
    "method": "cgd", "seeds": [0],
    "settings": {"train": {"pretrained": False, "deterministic": True, "precision": "fp32", "device": "cpu",
                           "workers": 0},
                 "embed": {"precision": "fp32", "workers": 0}},
    "section": {"gd_config": "SG", "feature_dim": 32, "smoothing": 0.1, "temperature": 0.5, "margin": 0.1,
                "freeze_bn": False, "classes_per_batch": 4, "images_per_class": 2, "lr": 0.001, "epochs": 1,
                "lr_milestones": [0.5], "lr_gamma": 0.1, "train_resize": 36, "train_crop": 32, "test_resize": 32},
    "cells": [{"backbone": "resnet18", "dataset": "synthetic", "crop": "uncropped"},
              {"backbone": "resnet18", "dataset": "synthetic", "crop": "uncropped", "set": {"margin": 0.2}}],
}


def sh(cwd: Path, *command: str) -> str:
    # Stages import the clone's own copy of the package (the same bytes in every clone), not the installed one: a
    # source edit elsewhere during the test would change provenance.code_digest between the runs compared.
    env = {**os.environ, "PYTHONPATH": str(cwd / "src")} if (cwd / "src").is_dir() else None
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def ran(output: str) -> set[str]:
    """The stages whose command ran (not restored from the run-cache, not skipped)."""
    return set(re.findall(r"Running stage '([^']+)'", output))


def tables_without_timings(clone: Path) -> str:
    """benchmarks/README.md without the provenance table's train-time column (wall time differs by machine)."""
    return re.sub(r"\| [0-9.]+ min +\|", "| |", (clone / "benchmarks/README.md").read_text())


@pytest.fixture(scope="module")
def origin(tmp_path_factory) -> Path:
    """A git + DVC repository holding the grid's code, a 2-cell recipe, synthetic raw data and a local remote."""
    root = tmp_path_factory.mktemp("grid")
    origin = root / "origin"
    for folder in ("src", "stages"):
        shutil.copytree(REPO / folder, origin / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (origin / "benchmarks/recipes").mkdir(parents=True)
    for name in ("dvc.yaml", "README.md", ".gitignore"):
        shutil.copy(REPO / "benchmarks" / name, origin / "benchmarks" / name)
    shutil.copytree(REPO / PUBLISHED, origin / PUBLISHED)
    (origin / "benchmarks/metrics").mkdir()
    (origin / "benchmarks/metrics/.gitkeep").write_text("")
    (origin / "benchmarks/recipes/cgd.yaml").write_text(yaml.safe_dump(RECIPE))
    base = yaml.safe_load((REPO / "benchmarks/params.yaml").read_text())["base"]
    base["prepare"].update(max_side=48, workers=0)
    base["synthetic"] = {"num_classes": 8, "images_per_class": 6, "image_size": 40, "seed": 0}
    (origin / "benchmarks/params.yaml").write_text(yaml.safe_dump({"base": base}))
    write_synthetic(origin / "data/synthetic", num_classes=8, images_per_class=6, image_size=40, seed=0)
    sh(origin, "python", "-m", "dmlbench.grid", "write")
    sh(origin, "git", "init", "-q")
    sh(origin, "dvc", "init", "-q")
    sh(origin, "dvc", "remote", "add", "-d", "shared", str(root / "remote"))
    sh(origin, "git", "add", "-A")
    sh(origin, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "grid")
    return origin


def clone(origin: Path, name: str) -> Path:
    target = origin.parent / name
    sh(origin.parent, "git", "clone", "-q", str(origin), str(target))
    return target


@pytest.mark.slow  # dvc pipelines in clones, ~45 s each; the canary below keeps the module in the fast tier
def test_the_grid_runs_every_cell_and_a_one_cell_change_reruns_that_cell(origin):
    one = clone(origin, "one")
    first = sh(one, "dvc", "repro", "benchmarks/dvc.yaml")
    assert ran(first) == {"benchmarks/dvc.yaml:prepare@synthetic-uncropped", f"benchmarks/dvc.yaml:cell@{CELL_1}",
                          f"benchmarks/dvc.yaml:cell@{CELL_2}", "benchmarks/dvc.yaml:tables"}
    metrics = json.loads((one / f"benchmarks/metrics/{CELL_1}.json").read_text())
    assert metrics["run"]["recipe"] == "seed" and metrics["provenance"]["deterministic"] is True
    assert metrics["provenance"]["device"] == "cpu" and metrics["provenance"]["train_seconds"] > 0
    page = (one / "benchmarks/README.md").read_text()
    assert "Synthetic demo" in page and "dmlbench, seed recipe, from scratch, 1 epochs, last epoch" in page
    assert (one / "benchmarks/overview.png").read_bytes()[:4] == b"\x89PNG"

    recipe = yaml.safe_load((one / "benchmarks/recipes/cgd.yaml").read_text())
    recipe["cells"][1]["set"] = {"margin": 0.3}  # one cell changes; its name follows its settings
    (one / "benchmarks/recipes/cgd.yaml").write_text(yaml.safe_dump(recipe))
    sh(one, "python", "-m", "dmlbench.grid", "write")
    second = sh(one, "dvc", "repro", "benchmarks/dvc.yaml")
    assert ran(second) == {"benchmarks/dvc.yaml:cell@cgd-resnet18-synthetic-uncropped-margin_0p3-s0",
                           "benchmarks/dvc.yaml:tables"}

    before = without_timings(json.loads((one / f"benchmarks/metrics/{CELL_1}.json").read_text()))
    sh(one, "dvc", "repro", "-f", "-s", f"benchmarks/dvc.yaml:cell@{CELL_1}")
    after = without_timings(json.loads((one / f"benchmarks/metrics/{CELL_1}.json").read_text()))
    assert json.dumps(after, sort_keys=True) == json.dumps(before, sort_keys=True)  # deterministic rerun


def test_a_plain_dvc_exp_run_warns_about_cells_nobody_ran_and_naming_the_pipeline_does_not(origin):
    """DVC 3.x's `dvc exp run` first checks out the cached outs of every dvc.yaml in the repository (DVC issue 5472),
    and a grid cell nobody ran has no hash yet: one "No file hash info found ... It won't be created" per out (221 on
    the real grid). The outs stay cached (the run-cache needs them: docs/grid.md); `dvc exp run dvc.yaml` scopes the
    checkout to the named pipeline and prints nothing. When a DVC release stops warning on a plain `dvc exp run`,
    the first assertion fails and the docs' advice to name the pipeline can go."""
    exp = clone(origin, "exp")
    for key, value in (("user.name", "t"), ("user.email", "t@t")):
        sh(exp, "git", "config", key, value)
    (exp / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"demo": {"cmd": "echo 1 > out.txt",
                                                                      "outs": ["out.txt"]}}}))
    sh(exp, "dvc", "repro", "dvc.yaml")  # run once and committed, as the demo pipeline is
    sh(exp, "git", "add", "dvc.yaml", "dvc.lock", ".gitignore")
    sh(exp, "git", "commit", "-qm", "a demo pipeline beside the grid")
    named = sh(exp, "dvc", "exp", "run", "dvc.yaml")
    assert "Ran experiment" in named and "WARNING" not in named, named
    plain = sh(exp, "dvc", "exp", "run")
    assert plain.count("No file hash info found for") == 5, plain  # prepare's out, 2 cells x (run folder, metrics)


@pytest.mark.slow  # dvc pipelines in clones, ~45 s each; the canary below keeps the module in the fast tier
def test_three_clones_split_the_grid_through_a_dvc_remote(origin):
    a, b, c, single = (clone(origin, name) for name in ("a", "b", "c", "single"))
    sh(a, "dvc", "repro", f"benchmarks/dvc.yaml:cell@{CELL_1}")
    sh(a, "dvc", "push", "--run-cache")
    sh(b, "dvc", "repro", f"benchmarks/dvc.yaml:cell@{CELL_2}")
    sh(b, "dvc", "push", "--run-cache")
    rendered = sh(c, "dvc", "repro", "--pull", "benchmarks/dvc.yaml")  # run-cache entries and outputs pulled
    assert ran(rendered) == {"benchmarks/dvc.yaml:tables"}  # prepare and both cells come from the run-cache
    assert "is cached - skipping run" in rendered
    sh(single, "dvc", "repro", "benchmarks/dvc.yaml")
    for cell in (CELL_1, CELL_2):
        ours, theirs = (without_timings(json.loads((x / f"benchmarks/metrics/{cell}.json").read_text()))
                        for x in (c, single))
        assert ours == theirs, cell
    assert tables_without_timings(c) == tables_without_timings(single)
