"""`dmlbench compare`: paired differences of two runs' metrics with a paired-bootstrap interval and a verdict, on
runs written as evaluate leaves them (an embeddings file and a metrics file), in the workspace or the grid."""

import json
import re
from pathlib import Path

import pytest
import torch

from dmlbench import atomic
from dmlbench.cli import main
from dmlbench.cli.compare import verdict
from dmlbench.grid import cell_paths
from dmlbench.identity import RunPaths
from dmlbench.retrieval.evaluation import evaluate_splits

CLASSES, PER_CLASS, DIM, KS = 24, 5, 8, (1, 2, 4, 8)
LINE = re.compile(r"^(\w+)\s+(\S+)\s+A\s+([\d.]+)\s+B\s+([\d.]+)\s+(.+) on (\S+): ([+-][\d.]+) "
                  r"\[([+-][\d.]+), ([+-][\d.]+)\]$")


def make_test_set(noise: float, seed: int) -> dict:
    """24 classes x 5 images: class centre + noise, L2-normalised, classes interleaved in file order."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(CLASSES).repeat(PER_CLASS)
    centres = torch.randn(CLASSES, DIM, generator=torch.Generator().manual_seed(99))
    emb = torch.nn.functional.normalize(centres[labels] + noise * torch.randn(len(labels), DIM, generator=gen), dim=1)
    paths = [f"images/{int(c):03d}/{i}.jpg" for i, c in enumerate(labels)]
    return {"embeddings": emb, "labels": labels, "paths": paths}


def write_run(root: Path, paths: RunPaths, name: str, test: dict, features=("dense",)) -> None:
    """The two files of a run, laid out as embed and evaluate (run_record) write them."""
    stamp = {"method": "cgd", "dataset": "synthetic", "crop": "uncropped", "seed": 0, "name": name}
    atomic.save_torch(root / paths.embeddings, {"run": stamp, "training": {}, "embedding": {"precision": "fp32"},
                                                "splits": {"test": test}})
    result = evaluate_splits({"test": test}, KS, 16, features)
    record = {"run": {**stamp, "features": list(features)}, "params": {"evaluate": {"chunk_size": 16}},
              "recall_ks": {"ks": list(KS), "source": "dataset"}, **result}
    atomic.write_json(root / paths.metrics, record)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """good: a fair model; twin: the same quality, other noise; shuffled: good's embeddings given to other images
    (retrieval at chance); cell: good's files in the grid's layout."""
    root = tmp_path_factory.mktemp("ws")
    good = make_test_set(1.0, 0)
    shuffled = {**good, "embeddings": good["embeddings"][torch.randperm(len(good["labels"]),
                                                                        generator=torch.Generator().manual_seed(1))]}
    for name, test in (("good", good), ("twin", make_test_set(1.0, 7)), ("shuffled", shuffled)):
        write_run(root, RunPaths.of(name), name, test)
    write_run(root, cell_paths("cgd-resnet18-synthetic-uncropped-s0"), "cgd-resnet18-synthetic-uncropped-s0", good)
    for name, test in (("codes", good), ("codes_shuffled", shuffled)):  # NormSoftmax-like: binary codes too
        write_run(root, RunPaths.of(name), name, test, ("dense", "binary"))
    return root


def compare(root: Path, a: str, b: str, capsys) -> tuple[int, list[tuple], str, str]:
    status = main(["compare", a, b, "--root", str(root)])
    out, err = capsys.readouterr()
    rows = [m.groups() for m in map(LINE.match, out.splitlines()) if m]
    return status, rows, out, err


def metrics_of(root: Path, name: str) -> dict:
    return json.loads((root / RunPaths.of(name).metrics).read_text())["metrics"]


def test_a_run_against_itself_differs_by_exactly_zero(workspace, capsys):
    status, rows, out, _ = compare(workspace, "good", "good", capsys)
    assert status == 0 and len(rows) == len(KS) + 2
    assert all(r[4] == "no difference shown" and r[6:] == ("+0.0", "+0.0", "+0.0") for r in rows)
    assert "120 queries in 24 classes (self-retrieval)" in out and "1,000 resamples of the classes, seed 0" in out


def test_a_run_beats_its_shuffled_embeddings_on_every_metric(workspace, capsys):
    status, rows, _, _ = compare(workspace, "good", "shuffled", capsys)
    assert status == 0
    stored = metrics_of(workspace, "good"), metrics_of(workspace, "shuffled")
    names = [f"recall@{k}" for k in KS] + ["map@r", "r_precision"]
    for row, name in zip(rows, names):
        assert row[4] == "A better than B" and float(row[7]) > 0, row  # the interval excludes 0
        # The point values are the metrics files', in percent with one decimal.
        assert (row[2], row[3]) == (f"{100 * stored[0][name]:.1f}", f"{100 * stored[1][name]:.1f}")
    _, reverse, _, _ = compare(workspace, "shuffled", "good", capsys)
    assert all(r[4] == "B better than A" and float(r[8]) < 0 for r in reverse)


def test_a_grid_cell_compares_with_a_workspace_run(workspace, capsys):
    status, rows, out, _ = compare(workspace, "cgd-resnet18-synthetic-uncropped-s0", "good", capsys)
    assert status == 0 and "A: cgd-resnet18-synthetic-uncropped-s0" in out
    assert all(r[6:] == ("+0.0", "+0.0", "+0.0") for r in rows)  # the same embeddings in the grid's layout
    status, rows, _, _ = compare(workspace, "good", "twin", capsys)
    assert status == 0 and len(rows) == len(KS) + 2


def test_binary_codes_are_compared_when_both_runs_have_them(workspace, capsys):
    status, rows, _, _ = compare(workspace, "codes", "codes_shuffled", capsys)
    binary = [r for r in rows if r[0] == "binary"]
    stored = json.loads((workspace / RunPaths.of("codes").metrics).read_text())["metrics"]["binary"]
    assert status == 0 and len(binary) == len(KS) + 2 and all(r[4] == "A better than B" for r in binary)
    assert binary[0][2] == f"{100 * stored['recall@1']:.1f}"
    _, rows, _, _ = compare(workspace, "codes", "good", capsys)  # "good" has no binary codes: dense alone
    assert {r[0] for r in rows} == {"dense"}


def damaged(workspace: Path, tmp_path: Path, change) -> Path:
    """A copy of the workspace whose run "twin" has test split ``change(test)``."""
    root = tmp_path / "ws"
    import shutil

    shutil.copytree(workspace, root)
    saved = torch.load(root / RunPaths.of("twin").embeddings, weights_only=True)
    change(saved["splits"]["test"])
    atomic.save_torch(root / RunPaths.of("twin").embeddings, saved)
    return root


def rename(test):
    test["paths"][5] = "images/elsewhere.jpg"


def relabel(test):
    test["labels"][7] = 23 - test["labels"][7]


def shorten(test):
    for key in ("embeddings", "labels", "paths"):
        test[key] = test[key][:-1]


@pytest.mark.parametrize("change, problem", [
    (rename, "test image 5: images/005/5.jpg vs images/elsewhere.jpg"),
    (relabel, r"test image 7 \(images/007/7.jpg\): label 7 vs 16"),
    (shorten, "test: 120 vs 119 images")])
def test_runs_of_different_test_sets_are_refused_in_one_line(workspace, tmp_path, capsys, change, problem):
    root = damaged(workspace, tmp_path, change)
    status, rows, out, err = compare(root, "good", "twin", capsys)
    assert status == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert re.fullmatch(rf"dmlbench: error: runs good and twin were not evaluated on the same test set \({problem}\): "
                        rf"compare runs of one dataset\n", err)


def test_unknown_runs_and_stale_metrics_are_one_line(workspace, tmp_path, capsys):
    status, _, _, err = compare(workspace, "good", "nosuch", capsys)
    assert status == 2 and err.startswith("dmlbench: error: no evaluated run 'nosuch' under ")
    assert "neither metrics/runs/nosuch.json nor benchmarks/metrics/nosuch.json exists" in err
    status, _, _, err = compare(workspace, "good", "../good", capsys)
    assert status == 2 and "no evaluated run '../good'" in err
    # A metrics file whose numbers its embeddings do not give (written by other embeddings): refused, not shown.
    root = damaged(workspace, tmp_path, lambda test: None)
    (root / RunPaths.of("shuffled").embeddings).unlink()
    status, _, _, err = compare(root, "shuffled", "good", capsys)
    assert status == 2 and err == (f"dmlbench: error: run shuffled has a metrics file but not its embeddings "
                                   f"({root / RunPaths.of('shuffled').embeddings}), which compare ranks again: "
                                   f"restore them (dvc pull, or dvc repro for that run)\n")
    path = root / RunPaths.of("twin").metrics
    record = json.loads(path.read_text())
    record["metrics"]["recall@1"] = 0.123
    path.write_text(json.dumps(record))
    status, _, _, err = compare(root, "good", "twin", capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "says dense recall@1 = 0.123, but the embeddings of run twin give" in err


def test_verdict_words_and_signs():
    assert verdict("R@1", 0.021, 0.014, 0.029) == "A better than B on R@1: +2.1 [+1.4, +2.9]"
    assert verdict("MAP@R", -0.03, -0.041, -0.019) == "B better than A on MAP@R: -3.0 [-4.1, -1.9]"
    assert verdict("R@2", 0.003, -0.005, 0.011) == "no difference shown on R@2: +0.3 [-0.5, +1.1]"
    assert verdict("R@1", 0.0, 0.0, 0.0) == "no difference shown on R@1: +0.0 [+0.0, +0.0]"  # 0 is in [0, 0]
