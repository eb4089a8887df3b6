"""End to end: `dvc exp run -S method=unifiedproxy`, with each loss, in a tiny copy of the repository (what the
lead runs for the demo table's rows)."""

import json
import sys
from pathlib import Path

import pytest
import yaml
from pipeline_repo import BUT_PICTURES, commit, make_repo, run_records, sh, tiny_params

# 4 training classes x 6 images at 40 px in the tiny copy: batches of 8 -> 3 per epoch; 1 frozen epoch + 1 more.
TINY = {"feature_dim": 16, "batch_size": 8, "epochs": 2, "frozen_epochs": 1, "lr_step": 1, "train_crop": 32,
        "test_resize": 36, "test_crop": 32}
PREFIX = "unifiedproxy-{}-resnet18-synthetic-uncropped-demo-s0-"


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = make_repo(tmp_path_factory)  # the demo's prepared data are reused; its CGD run stays beside these
    params = tiny_params()
    params["unifiedproxy"].update(TINY)
    # No 224-px grid here: the non-ResNet models' exact counts are tested in tests/models (CI time budget).
    params["complexity"].update(backbones=[], datasets=[])
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    commit(root, "tiny unifiedproxy section")
    for loss in ("balanced_proxy", "proxy_anchor"):
        sh(root, sys.executable, "-m", "dvc", "exp", "run", "-S", "method=unifiedproxy",
           "-S", f"unifiedproxy.loss={loss}", BUT_PICTURES)
    return root


def one_record(root: Path, variant: str) -> dict:
    (record,) = [r for name, r in run_records(root).items() if name.startswith(PREFIX.format(variant))]
    return record


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["balanced_proxy.dmlbench", "proxy_anchor"])
def test_each_loss_writes_its_own_metrics_file(repo, variant):
    record = one_record(repo, variant)
    run = record["run"]
    assert run["variant"] == variant and run["method"] == "unifiedproxy" and run["pretrained"] is False
    assert (run["epochs"], run["warmup_epochs"], run["frozen_epochs"]) == (2, 0, 1)
    assert run["image_sizes"] == {"train": 32, "test": 32, "resize": 36}
    assert record["params"]["method"]["feature_dim"] == 16
    assert record["params"]["method"]["loss"] == variant.split(".")[0]
    metrics = record["metrics"]
    assert set(metrics) == {"recall@1", "recall@2", "recall@4", "recall@8", "map@r", "r_precision"}
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    assert metrics["recall@1"] <= metrics["recall@2"] <= metrics["recall@4"] <= metrics["recall@8"]
    assert record["queries"] == 4 * 6 and record["gallery"] == 4 * 6 - 1


@pytest.mark.slow
def test_the_last_run_logs_the_proxy_rate_and_its_loss_terms(repo):
    live = repo / "dvclive/plots/metrics/train"
    rates = [float(row.split("\t")[1]) for row in (live / "lr_proxies.tsv").read_text().splitlines()[1:]]
    params = yaml.safe_load((repo / "params.yaml").read_text())["unifiedproxy"]
    # proxy_lr x gamma in float64, logged as text: approx's 1e-6 relative is far above its rounding.
    assert rates == pytest.approx([params["proxy_lr"], params["proxy_lr"] * params["lr_gamma"]])
    assert (live / "proxy_anchor.tsv").is_file() and (live / "accuracy.tsv").is_file()
    assert json.loads((repo / "metrics/summary.json").read_text()) == one_record(repo, "proxy_anchor")["metrics"]
    # The complexity stage counts each model exactly: trunk + Linear(C -> 16) + proxies x 16 (CARS: 98 classes).
    complexity = json.loads((repo / "metrics/complexity/unifiedproxy.json").read_text())
    assert complexity["current"]["params"] == 11_176_512 + 512 * 16 + 4 * 16


@pytest.mark.slow
def test_both_runs_reach_the_readme_tables(repo):
    block = (repo / "README.md").read_text().split("<!-- tables:start -->")[1].split("#### CARS196")[0]
    rows = [line for line in block.splitlines() if line.startswith("| unifiedproxy ")]
    assert len(rows) == 2 and all("2 epochs (1 frozen)" in row for row in rows)
    for variant in ("balanced_proxy.dmlbench", "proxy_anchor"):
        (row,) = [row for row in rows if f"| {variant} " in row]
        assert f"| {100 * one_record(repo, variant)['metrics']['recall@1']:.1f} " in row
