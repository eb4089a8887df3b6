"""End to end: `dvc repro` of a tiny config in a temporary copy of the repository (the demo run, reruns,
bad params). More in test_pipeline_runs.py and test_pipeline_experiments.py, split for pytest-xdist."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pipeline_repo import demo_record, make_repo, set_params, sh, tiny_params

from dmlbench.provenance import without_timings


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return make_repo(tmp_path_factory)


@pytest.mark.slow
def test_repro_writes_metrics_complexity_and_tables(repo):
    record = demo_record(repo)
    assert record["queries"] == 4 * 6 and record["gallery"] == 4 * 6 - 1
    assert record["run"]["recipe"] == "demo" and record["run"]["pretrained"] is False
    assert record["run"]["precision"] == "fp32" and record["run"]["image_sizes"] == {"train": 32, "test": 32,
                                                                                      "resize": 36}
    assert record["params"]["method"]["margin"] == 0.1 and record["params"]["train"]["device"] == "auto"
    metrics = record["metrics"]
    assert set(metrics) == {"recall@1", "recall@2", "recall@4", "recall@8", "map@r", "r_precision"}
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    assert metrics["recall@1"] <= metrics["recall@2"] <= metrics["recall@4"] <= metrics["recall@8"]
    assert json.loads((repo / "metrics/summary.json").read_text()) == metrics
    steps = (repo / "dvclive/plots/metrics/train/loss.tsv").read_text().splitlines()
    assert len(steps) == 1 + 2  # header + one row per epoch
    complexity = json.loads((repo / "metrics/complexity/cgd.json").read_text())
    assert complexity["current"]["classes"] == 4 and complexity["current"]["params"] > 11_000_000
    readme = (repo / "README.md").read_text()
    block = readme.split("<!-- tables:start -->")[1].split("<!-- tables:end -->")[0]
    assert f"{100 * metrics['recall@1']:.1f}" in block and "Synthetic demo" in block


@pytest.mark.slow
def test_second_repro_changes_nothing(repo):
    before = (repo / "README.md").read_bytes()
    out = sh(repo, sys.executable, "-m", "dvc", "repro")
    assert "didn't change" in out or "is up to date" in out
    assert (repo / "README.md").read_bytes() == before
    status = sh(repo, sys.executable, "-m", "dvc", "status")
    assert "up to date" in status


@pytest.mark.slow
def test_rerun_from_scratch_gives_byte_identical_metrics(repo):
    (metrics,) = (repo / "metrics/runs").glob("cgd-SG-resnet18-synthetic-uncropped-demo-s0-*.json")
    before = without_timings(json.loads(metrics.read_text())), (repo / "metrics/summary.json").read_bytes()
    shutil.rmtree(repo / "checkpoints")  # otherwise train would resume its finished checkpoint
    # -f evaluate: every stage up to the metrics again, from the synthetic images on (check, synthesize, prepare,
    # train, embed, evaluate); pictures, complexity and tables read these metrics and write none.
    sh(repo, sys.executable, "-m", "dvc", "repro", "-f", "evaluate")
    # Byte for byte but the training's wall time (provenance.train_seconds), on the same machine and threads. The
    # fixture committed the first run's outputs, so HEAD (provenance.git_commit) moved although the code did not.
    after = without_timings(json.loads(metrics.read_text())), (repo / "metrics/summary.json").read_bytes()
    for record in (after[0], before[0]):
        record["provenance"].pop("git_commit")
    assert json.dumps(after[0], sort_keys=True) == json.dumps(before[0], sort_keys=True) and after[1] == before[1]


@pytest.mark.slow
def test_bad_param_fails_with_one_line(repo):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["cgd"]["gd_config"] = "SX"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        result = subprocess.run([sys.executable, "stages/train.py"], cwd=repo, capture_output=True, text=True)
    finally:
        (repo / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dmlbench: error:") and "SX" in lines[0]


OUTPUTS = ("models", "embeddings", "checkpoints", "dvclive", "metrics", "plots", "README.md")


def snapshot(root: Path) -> dict[str, bytes]:
    """The bytes of every stage output, by path (dvc.lock is DVC's record of what ran, and may change)."""
    files = [root / name for name in OUTPUTS if (root / name).is_file()]
    files += [f for name in OUTPUTS if (root / name).is_dir() for f in (root / name).rglob("*") if f.is_file()]
    return {str(f.relative_to(root)): f.read_bytes() for f in sorted(files)}


@pytest.mark.slow
@pytest.mark.parametrize("changes, expected", [
    ({"cgd.lr": "fast"}, "cgd.lr must be float, got 'fast'"),
    ({"metod": "normsoftmax"}, "unknown top-level key 'metod' (did you mean 'method'?)"),
    ({"evaluate.recall_ks": [1, 1000]}, "Recall@1000 asked"),
    # A new training run whose K list cannot be evaluated stops before training, not after.
    ({"cgd.lr": 0.002, "evaluate.recall_ks": [1, 1000]}, "Recall@1000 asked"),
    ({"prepare.max_side": 32}, "prepare.max_side is 32 but cgd resizes images to 36 px"),
], ids=["string-lr", "top-level-typo", "k-list", "k-list-train", "max-side"])  # the rest: tests/test_config.py
def test_bad_param_under_dvc_repro_keeps_every_earlier_output(repo, changes, expected):
    before = snapshot(repo)
    set_params(repo, **changes)
    try:
        result = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=repo, capture_output=True, text=True)
    finally:
        set_params(repo)
    errors = [line for line in result.stderr.splitlines() if line.startswith("dmlbench: error:")]
    assert result.returncode != 0 and len(errors) == 1 and expected in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(repo) == before  # nothing deleted, nothing half-written, no new run folder
