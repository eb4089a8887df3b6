"""The sweep's stages end to end on a tiny synthetic set: trials never read the test split, the chosen trial is the
best by validation score, its metrics file and the tables agree."""

import json
import os
import runpy
import shutil
import sys
from pathlib import Path

import pytest
import torch
import yaml

from dmlbench.sweep import read_sweep, write_sweep
from dmlbench.sweep.table import MARKERS

REPO = Path(__file__).resolve().parents[2]

TINY = {
    "budget": 2, "seed": 0,
    "base": {"backbone": "resnet18", "dataset": "synthetic", "crop": "uncropped", "seed": 0,
             "data": {"root": "data/raw"},
             # 8 training classes: val_fraction 0.625 holds out 5 x 10 = 50 images, the least best_val accepts
             "synthetic": {"num_classes": 16, "images_per_class": 10, "image_size": 32, "seed": 0},
             "prepare": {"max_side": 32, "workers": 0, "check_counts": True, "skip_corrupt": False,
                         "jpeg_quality": 95},
             "train": {"device": "cpu", "workers": 0, "pretrained": False, "deterministic": False,
                       "checkpoint_every_steps": 0, "precision": "fp32", "select": "best_val",
                       "val_fraction": 0.625, "select_batch_size": 64, "select_metric": "map@r"},
             "embed": {"batch_size": 64, "workers": 0, "precision": "fp32", "channels_last": True},
             "evaluate": {"chunk_size": 1024, "recall_ks": None},
             "complexity": {"image_size": 224, "backbones": [], "datasets": []},
             "tables": {"readme": "README.md"}},
    "methods": {"cgd": {
        "section": {"gd_config": "SG", "feature_dim": 48, "smoothing": 0.1, "margin": 0.1, "temperature": 0.5,
                    "lr_milestones": [0.6], "lr_gamma": 0.1, "classes_per_batch": 3, "images_per_class": 4,
                    "epochs": 1, "freeze_bn": False, "train_resize": 32, "train_crop": 32, "test_resize": 32},
        "space": {"lr": [0.001, 0.01, 0.1]}}},
}


def stage(name: str, *args: str) -> None:
    """Run stages/<name>.py as DVC would, in this process (the working directory is the sweep's repo)."""
    argv = sys.argv
    sys.argv = [name, *args]
    try:
        runpy.run_path(str(REPO / "stages" / f"{name}.py"), run_name="__main__")
    finally:
        sys.argv = argv


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    (root / "sweeps").mkdir()
    (root / "docs").mkdir()
    (root / "sweeps/params.yaml").write_text(yaml.safe_dump(TINY, sort_keys=False))
    (root / "docs/tuning.md").write_text("# Tuning\n\n{}\n{}\n\nafter\n".format(*MARKERS))
    here = Path.cwd()
    os.chdir(root)
    try:
        write_sweep()
        stage("sweep_prepare")
        # The trials must not read the test split: take its manifest away while they run.
        test_csv = Path("sweeps/prepared/test.csv")
        shutil.move(test_csv, root / "test.csv.aside")
        for name in read_sweep()["trials"]:
            stage("sweep_trial", name)
        assert not list(Path("sweeps").rglob("embeddings.pt"))  # no trial embedded anything
        shutil.move(root / "test.csv.aside", test_csv)
        stage("sweep_tuned", "cgd")
        stage("sweep_table")
        yield root
    finally:
        os.chdir(here)


def test_the_trials_are_the_budget_drawn_from_the_space(swept):
    trials = read_sweep(swept / "sweeps/params.yaml")["trials"]
    assert list(trials) == ["cgd-t0", "cgd-t1"]
    values = [t["set"]["lr"] for t in trials.values()]
    assert len(set(values)) == 2 and set(values) <= {0.001, 0.01, 0.1}


def test_the_chosen_trial_has_the_best_validation_score_and_its_own_weights(swept):
    record = json.loads((swept / "sweeps/metrics/cgd.json").read_text())
    trials = {t["trial"]: t for t in record["sweep"]["all_trials"]}
    best = max(t["val_score"] for t in trials.values())
    first_best = next(name for name, t in trials.items() if t["val_score"] == best)  # a tie: the earlier trial
    assert record["sweep"]["chosen"] == first_best and record["sweep"]["trials"] == 2
    for name, trial in trials.items():  # each trial.json holds what its model file recorded, nothing else
        saved = torch.load(swept / "sweeps/trials/cgd" / name / "model.pt", weights_only=True)["training"]
        assert trial["val_scores"] == saved["selected_scores"] and trial["select_metric"] == "map@r"
        assert trial["val_score"] == saved["selected_scores"]["map@r"]
    assert record["run"]["name"] == trials[record["sweep"]["chosen"]]["run"]
    assert record["run"]["selection"] == "best_val"
    low, high = record["intervals"]["metrics"]["recall@1"]
    assert low <= record["metrics"]["recall@1"] <= high


def test_the_tables_show_the_metrics_files_numbers(swept):
    record = json.loads((swept / "sweeps/metrics/cgd.json").read_text())
    text = (swept / "docs/tuning.md").read_text()
    assert text.startswith("# Tuning\n\n") and text.endswith("\n\nafter\n")  # the hand-written text is kept
    row = next(line for line in text.splitlines() if line.startswith("| cgd "))
    r1, (low, high) = record["metrics"]["recall@1"], record["intervals"]["metrics"]["recall@1"]
    assert f"{100 * r1:.1f} [{100 * low:.1f}, {100 * high:.1f}]" in row
    assert f" {record['sweep']['chosen']} " in row and f" {record['run']['digest']} " in row
    assert "†" not in row
