"""End to end: `dvc exp run` experiments (another variant, another method) beside the demo run."""

import json
import sys
from pathlib import Path

import pytest
from pipeline_repo import BUT_PICTURES, demo_record, make_repo, run_records, sh

@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return make_repo(tmp_path_factory)


@pytest.mark.slow
def test_experiment_with_other_params_shows_in_exp_show_and_metrics_diff(repo):
    sh(repo, sys.executable, "-m", "dvc", "exp", "run", "-S", "crop=cropped", "-S", "cgd.gd_config=MG", BUT_PICTURES)
    shown = json.loads(sh(repo, sys.executable, "-m", "dvc", "exp", "show", "--json"))
    params = [exp["data"]["params"]["params.yaml"]["data"]
              for entry in shown for exp in (entry.get("experiments") or [])
              for exp in (exp.get("revs") or [])]
    assert any(p["crop"] == "cropped" and p["cgd"]["gd_config"] == "MG" for p in params)
    diff = json.loads(sh(repo, sys.executable, "-m", "dvc", "metrics", "diff", "--json"))
    assert "recall@1" in diff["metrics/summary.json"]
    # The new run has its own metrics file; the demo's stays, and the tables show both rows.
    names = run_records(repo)
    assert any(n.startswith("cgd-MG-resnet18-synthetic-cropped-demo-s0-") for n in names)
    assert demo_record(repo)["run"]["variant"] == "SG"
    block = (repo / "README.md").read_text().split("<!-- tables:start -->")[1]
    assert "| MG " in block and "| SG " in block


@pytest.mark.slow
def test_normsoftmax_plugs_in_with_dense_and_binary_metrics(repo):
    sh(repo, sys.executable, "-m", "dvc", "exp", "run", "-S", "method=normsoftmax", "-S", "crop=uncropped",
       BUT_PICTURES)
    (record,) = [r for n, r in run_records(repo).items() if n.startswith("normsoftmax-32_d-resnet18-synthetic-")]
    dense, binary = record["metrics"], record["metrics"]["binary"]
    assert set(binary) == {"recall@1", "recall@2", "recall@4", "recall@8", "map@r", "r_precision"}
    assert 0 < dense["recall@1"] <= 1 and 0 < binary["recall@1"] <= 1
    assert record["run"]["warmup_epochs"] == 1 and record["run"]["variant"] == "32-d"
    # Against the committed CGD demo run, metrics diff lines up the dense keys and adds the binary ones.
    diff = json.loads(sh(repo, sys.executable, "-m", "dvc", "metrics", "diff", "--json"))["metrics/summary.json"]
    assert "recall@1" in diff and "binary.recall@1" in diff
    block = (repo / "README.md").read_text().split("<!-- tables:start -->")[1]
    rows = [line for line in block.splitlines() if line.startswith("| normsoftmax") and "ResNet18" in line]
    assert [row.split("|")[5].strip() for row in rows] == ["dense", "binary"]
