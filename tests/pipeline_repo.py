"""A tiny copy of the repository for the end-to-end pipeline tests (tests/test_pipeline*.py)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from committed import committed_params
from filelock import FileLock

from dmlbench.pipeline.experiment import load_experiment
from dmlbench.pipeline.run_name import run_of
from dmlbench.reporting.tables import PUBLISHED

REPO = Path(__file__).resolve().parents[1]
COPIED = ["dvc.yaml", "params.yaml", "README.md", "stages", "src", str(PUBLISHED)]


# The stage to name to `dvc repro` / `dvc exp run` where a test reads runs, metrics, complexity and the README
# tables but no picture: everything but the pictures stage (one stage process of ~4 s CPU per run), which the demo
# run, the rerun from scratch and the In-shop case still run.
BUT_PICTURES = "tables"


def tiny_params() -> dict:
    params = committed_params()
    params["synthetic"].update(num_classes=8, images_per_class=6, image_size=40)
    params["prepare"].update(max_side=40, workers=0)
    params["cgd"].update(epochs=2, classes_per_batch=2, images_per_class=3,
                         train_resize=36, train_crop=32, test_resize=32)
    params["normsoftmax"].update(feature_dim=32, epochs=1, warmup_epochs=1, classes_per_batch=2, images_per_class=3,
                                 train_resize=36, train_crop=32, test_resize=36, test_crop=32)
    params["complexity"].update(backbones=[], datasets=[])
    return params


def sh(cwd: Path, *cmd: str) -> str:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def copy_repo(root: Path) -> Path:
    """The pipeline's files and tiny params in ``root``, as a fresh git + DVC repository with one commit."""
    for name in COPIED:
        src, dst = REPO / name, root / name
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    sh(root, "git", "init", "-q")
    sh(root, sys.executable, "-m", "dvc", "init", "-q")
    sh(root, sys.executable, "-m", "dvc", "config", "core.analytics", "false")
    commit(root, "init")  # DVCLive needs a commit to compare against, as in any real clone
    return root


def make_repo(tmp_path_factory) -> Path:
    """A private copy of the repository with tiny params after one `dvc repro` of the demo, committed.

    The demo is run once per test session, by the first pytest-xdist worker that asks (the others wait on a file
    lock), and copied for each module: the modules change their copy (params, runs, experiments) freely."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # every worker's basetemp lies in this session's folder
    demo = shared / "demo-repo"
    with FileLock(str(shared / "demo-repo.lock")):
        if not demo.is_dir():
            building = shared / "demo-repo.partial"  # renamed when complete: a failed build is never reused
            shutil.rmtree(building, ignore_errors=True)
            building.mkdir()
            copy_repo(building)
            sh(building, sys.executable, "-m", "dvc", "repro")
            commit(building, "demo run")
            building.rename(demo)
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(demo, root, symlinks=True, dirs_exist_ok=True)  # copy2: mtimes kept, so DVC sees no change
    return root


def run_records(root: Path) -> dict[str, dict]:
    """Every metrics/runs/<run>.json of ``root``, by run name."""
    return {p.stem: json.loads(p.read_text()) for p in sorted((root / "metrics/runs").glob("*.json"))}


def demo_record(root: Path) -> dict:
    """The metrics file of the tiny demo run, named as the pipeline names it."""
    run = run_of(load_experiment(tiny_params()), root / "data/prepared/synthetic-uncropped")
    return json.loads((root / run.paths.metrics).read_text())


def set_params(root: Path, **changes) -> None:
    """Write tiny params with ``changes`` ({"cgd.margin": 0.2, "seed": 1}) into ``root``'s params.yaml."""
    params = tiny_params()
    for key, value in changes.items():
        *sections, name = key.split(".")
        target = params
        for section in sections:
            target = target[section]
        target[name] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def commit(root: Path, message: str) -> None:
    sh(root, "git", "add", "-A")
    sh(root, "git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm", message)
