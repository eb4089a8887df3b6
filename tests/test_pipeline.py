"""End to end: `dvc repro` of a tiny config in a temporary copy of the repository."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from committed import committed_params

from dmlbench.stage_params import check_params

REPO = Path(__file__).resolve().parents[1]
COPIED = ["dvc.yaml", "params.yaml", "README.md", "stages", "src", "benchmarks/published"]


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


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = copy_repo(tmp_path_factory.mktemp("repo"))
    sh(root, sys.executable, "-m", "dvc", "repro")
    commit(root, "demo run")
    return root


def run_records(root: Path) -> dict[str, dict]:
    """Every metrics/runs/<run>.json of ``root``, by run name."""
    return {p.stem: json.loads(p.read_text()) for p in sorted((root / "metrics/runs").glob("*.json"))}


def demo_record(root: Path) -> dict:
    """The metrics file of the tiny demo run, named as the pipeline names it."""
    return json.loads((root / check_params(tiny_params()).paths.metrics).read_text())


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
    before = metrics.read_bytes(), (repo / "metrics/summary.json").read_bytes()
    shutil.rmtree(repo / "checkpoints")  # otherwise train would resume its finished checkpoint
    sh(repo, sys.executable, "-m", "dvc", "repro", "-f")
    assert (metrics.read_bytes(), (repo / "metrics/summary.json").read_bytes()) == before


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


@pytest.mark.slow
def test_runs_differing_in_a_method_param_seed_or_recipe_keep_their_files_and_rows(repo):
    demo = demo_record(repo)
    for changes in ({"cgd.margin": 0.2}, {"seed": 1}, {"recipe": "mine"}):
        set_params(repo, **changes)
        sh(repo, sys.executable, "-m", "dvc", "repro")
    set_params(repo)
    sh(repo, sys.executable, "-m", "dvc", "repro")  # back to the demo: resumes its finished checkpoint
    names = [n for n in run_records(repo) if n.startswith("cgd-SG-resnet18-synthetic-uncropped-")]
    assert len(names) == 4 and demo_record(repo)["metrics"] == demo["metrics"]
    assert {run_records(repo)[n]["params"]["method"]["margin"] for n in names} == {0.1, 0.2}
    assert any("-mine-s0-" in n for n in names) and any("-demo-s1-" in n for n in names)
    block = (repo / "README.md").read_text().split("<!-- tables:start -->")[1].split("#### CARS196")[0]
    rows = [line for line in block.splitlines() if line.startswith("| cgd ") and "uncropped" in line]
    assert len(rows) == 4 and sum("mine recipe" in row for row in rows) == 1
    # Rows whose visible columns match name their seed and run, so a reader can tell them apart.
    assert sum(", seed 1, run " in row for row in rows) == 1 and sum(", seed 0, run " in row for row in rows) == 2
    for name in names:  # every run kept its own files
        assert (repo / "models" / name / "model.pt").is_file() and (repo / "embeddings" / name).is_dir()


@pytest.mark.slow
def test_experiment_with_other_params_shows_in_exp_show_and_metrics_diff(repo):
    sh(repo, sys.executable, "-m", "dvc", "exp", "run", "-S", "crop=cropped", "-S", "cgd.gd_config=MG")
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
    sh(repo, sys.executable, "-m", "dvc", "exp", "run", "-S", "method=normsoftmax", "-S", "crop=uncropped")
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
