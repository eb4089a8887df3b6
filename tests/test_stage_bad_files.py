"""Every stage script, run on a corrupted copy of each file it reads, ends with one `dmlbench: error:` line (exit
status 2), never a traceback; the stage's earlier outputs stay. (prepare's own inputs: tests/data.)"""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from pipeline_repo import make_repo, tiny_params

from dmlbench.pipeline.experiment import load_experiment
from dmlbench.pipeline.run_name import run_of

STAGE_ORDER = ("check", "synthesize", "prepare", "train", "embed", "evaluate", "complexity", "tables")
PREPARED = Path("data/prepared/synthetic-uncropped")


def run_stage(root: Path, name: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, f"stages/{name}.py"], cwd=root, capture_output=True, text=True)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """The stage scripts, tiny params and the outputs of one good run of every stage: a private copy of the
    session's demo repository (tests/pipeline_repo.py), whose `dvc repro` ran these stages; DVC plays no part
    below, the cases run each stage script alone."""
    root = make_repo(tmp_path_factory)
    for name in STAGE_ORDER:  # every output a case corrupts or checks is there
        assert (root / "dvc.lock").is_file() and name in (root / "dvc.lock").read_text(), name
    return root


def run_paths(root: Path):
    """The paths of the workspace's run (its name holds the digest of the workspace's prepared data)."""
    return run_of(load_experiment(tiny_params()), root / PREPARED).paths


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:100])


def foreign_torch(path: Path) -> None:
    torch.save({"weights": torch.zeros(3)}, path)


def text(content: str):
    return lambda path: path.write_text(content)


def json_key(key: str, value):
    """Set ``key`` (dotted) of a JSON file to ``value`` (NaN written as JSON's NaN, as a hand edit would)."""
    def corrupt(path: Path) -> None:
        record = json.loads(path.read_text())
        *parents, last = key.split(".")
        target = record
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[last] = value
        path.write_text(json.dumps(record))
    return corrupt


def yaml_key(key: str, value):
    """Set ``key`` (dotted) of params.yaml to ``value``."""
    def corrupt(path: Path) -> None:
        params = yaml.safe_load(path.read_text())
        *parents, last = key.split(".")
        target = params
        for part in parents:
            target = target[part]
        target[last] = value
        path.write_text(yaml.safe_dump(params, sort_keys=False))
    return corrupt


def first_test_image(root: Path) -> Path:
    return PREPARED / (root / PREPARED / "test.csv").read_text().splitlines()[1].split(",")[0]


CASES = {  # id: (stage, workspace -> file to corrupt, corruption, words of the error)
    "params-not-yaml": ("check", lambda r: "params.yaml", text("a: [1,\n"), "not valid YAML"),
    "params-not-mapping": ("train", lambda r: "params.yaml", text("- 1\n"), "must be a mapping"),
    "train-manifest-header": ("train", lambda r: PREPARED / "train.csv", text("pa"), "must start with the header"),
    "train-manifest-label": ("train", lambda r: PREPARED / "train.csv", text("path,label\nx.jpg,abc\n"),
                             "malformed manifest"),
    "test-manifest-missing": ("train", lambda r: PREPARED / "test.csv", Path.unlink, "neither test.csv nor query.csv"),
    "model-truncated": ("embed", lambda r: run_paths(r).model, truncate, "cannot read model file"),
    "model-foreign": ("embed", lambda r: run_paths(r).model, foreign_torch, "not a dmlbench model"),
    "test-image-corrupt": ("embed", first_test_image, text("not a jpeg"), "cannot read prepared image"),
    "embeddings-truncated": ("evaluate", lambda r: run_paths(r).embeddings, truncate, "cannot read embeddings file"),
    "embeddings-foreign": ("evaluate", lambda r: run_paths(r).embeddings, foreign_torch, "not an embeddings file"),
    "complexity-manifest": ("complexity", lambda r: PREPARED / "train.csv", text("\x00\x01garbage"), "manifest"),
    "metrics-json": ("tables", lambda r: run_paths(r).metrics, text("{not json"), "metrics"),
    "readme-markers": ("tables", lambda r: "README.md", text("no markers here\n"), "needs exactly one"),
    "metrics-recall-nan": ("tables", lambda r: run_paths(r).metrics, json_key("metrics.recall@1", math.nan),
                           "metrics.recall@1 is nan, not a number in [0, 1]"),
    "metrics-recall-5": ("tables", lambda r: run_paths(r).metrics, json_key("metrics.recall@1", 5.0),
                         "metrics.recall@1 is 5.0, not a number in [0, 1]"),
    "metrics-train-seconds": ("tables", lambda r: run_paths(r).metrics, json_key("provenance.train_seconds", -1),
                              "provenance.train_seconds is -1, not a number of seconds >= 0"),
    "complexity-macs-nan": ("tables", lambda r: "metrics/complexity/cgd.json",
                            json_key("grid", [{"backbone": "resnet50", "dataset": "car", "params": 26858658,
                                               "macs_seed": math.nan, "macs_thop": 10678398976}]),
                            "cgd.json: grid[0].macs_seed is nan, not an integer >= 0"),
    "seed-beyond-numpy": ("check", lambda r: "params.yaml", yaml_key("seed", 2**63),
                          "seed must be in [0, 4294967295] (numpy's seed range), got 9223372036854775808"),
    "synthetic-seed-negative": ("check", lambda r: "params.yaml", yaml_key("synthetic.seed", -1),
                                "synthetic.seed must be in [0, 4294967295] (numpy's seed range), got -1"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_stage_on_a_corrupted_file_is_one_line(workspace, case):
    stage, target, corrupt, words = CASES[case]
    path = workspace / target(workspace)
    saved = path.read_bytes()
    outputs = {p: p.read_bytes() for p in (workspace / "metrics").rglob("*.json")}
    outputs[workspace / "README.md"] = (workspace / "README.md").read_bytes()
    try:
        corrupt(path)
        result = run_stage(workspace, stage)
    finally:
        path.write_bytes(saved)
    errors = [line for line in result.stderr.splitlines() if line.startswith("dmlbench: error:")]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(errors) == 1 and words in errors[0], result.stderr
    assert {p: p.read_bytes() for p in [*(workspace / "metrics").rglob("*.json"), workspace / "README.md"]} == outputs
