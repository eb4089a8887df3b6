"""`dmlbench query` end to end on a tiny untrained run, and one error line (exit status 2) for each bad input."""

import re
import shutil
import tomllib
from pathlib import Path

import pytest
import torch
from PIL import Image

from dmlbench import atomic
from dmlbench.cli import main
from dmlbench.reporting.pictures import BLUE, GREEN, RED, cell_box
from dmlbench.reporting.ranking import top_k
from tiny_workspace import RUN, make_workspace

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def workspace(prepared, tmp_path_factory) -> Path:
    return make_workspace(prepared, tmp_path_factory.mktemp("ws"))


@pytest.fixture
def scratch(workspace, tmp_path) -> Path:
    """A copy of the workspace that a test may damage."""
    return Path(shutil.copytree(workspace, tmp_path / "ws"))


def stored(root: Path) -> dict:
    return torch.load(root / RUN.paths.embeddings, weights_only=True)["splits"]["test"]


def test_query_prints_the_exact_top_k_and_draws_it(workspace, tmp_path, capsys):
    test = stored(workspace)
    prepared = workspace / "data/prepared/synthetic-uncropped"
    image = prepared / test["paths"][5]
    out = tmp_path / "grid.png"
    assert main(["query", str(image), "--run", RUN.name, "--k", "4", "--root", str(workspace), "--out",
                 str(out)]) == 0
    printed = capsys.readouterr().out
    # The image is test item 5: it is removed from its own list by index, as evaluate does.
    _, expected = top_k(test["embeddings"][5:6], test["embeddings"], 4, torch.tensor([5]))
    lines = [line.split() for line in printed.splitlines() if line.strip()[:1].isdigit()]
    assert [int(line[0]) for line in lines] == [1, 2, 3, 4]
    assert [line[1] for line in lines] == [test["paths"][j] for j in expected[0].tolist()]
    assert [int(line[2]) for line in lines] == [int(test["labels"][j]) for j in expected[0].tolist()]
    picture = Image.open(out).convert("RGB")
    assert picture.getpixel(cell_box(0, 0)[:2]) == BLUE
    for column, j in enumerate(expected[0].tolist(), start=1):
        same = int(test["labels"][j]) == int(test["labels"][5])
        assert picture.getpixel(cell_box(0, column)[:2]) == (GREEN if same else RED)


def test_list_shows_the_run(workspace, capsys):
    assert main(["query", "--list", "--root", str(workspace)]) == 0
    assert RUN.name in capsys.readouterr().out


def test_train_gallery_is_embedded_with_the_runs_model(workspace, tmp_path, capsys):
    image = workspace / "data/prepared/synthetic-uncropped" / stored(workspace)["paths"][0]
    assert main(["query", str(image), "--run", RUN.name, "--gallery", "train", "--k", "12", "--root",
                 str(workspace), "--out", str(tmp_path / "g.png")]) == 0
    ranks = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.strip()[:1].isdigit()]
    assert ranks == [str(r) for r in range(1, 13)]  # the 12 training images (3 classes x 4)


def _not_an_image(root: Path) -> list[str]:
    (root / "x.jpg").write_text("not a picture")
    return [str(root / "x.jpg")]


def _other_params(root: Path) -> list[str]:
    other = root / "models" / "cgd-SG-resnet18-synthetic-uncropped-demo-s0-00000000"
    other.mkdir()
    shutil.copy(root / RUN.paths.model, other / "model.pt")
    return ["--run", other.name]


def _embedded_by_another_model(root: Path) -> list[str]:
    saved = torch.load(root / RUN.paths.embeddings, weights_only=True)
    saved["run"] = {**saved["run"], "digest": "00000000"}
    atomic.save_torch(root / RUN.paths.embeddings, saved)
    return []


def _empty_gallery(root: Path) -> list[str]:
    saved = torch.load(root / RUN.paths.embeddings, weights_only=True)
    saved["splits"]["test"] = {"embeddings": torch.zeros(0, 32), "labels": torch.zeros(0, dtype=torch.long),
                               "paths": []}
    atomic.save_torch(root / RUN.paths.embeddings, saved)
    return []


# (name, damage done to a copy of the workspace -> extra arguments, what the one error line must say)
CASES = [
    ("no such run", lambda root: ["--run", "nope"], r"no such run 'nope'.*--list shows the 1 runs"),
    ("path in --run", lambda root: ["--run", "../models"], r"no such run '../models'"),
    ("model from other params", _other_params, rf"holds the model of run '{RUN.name}', not '.*-00000000'"),
    ("embeddings from another model", _embedded_by_another_model, r"embedded with another model"),
    ("not an image", _not_an_image, r"x.jpg is not an image PIL can read"),
    ("missing image", lambda root: [str(root / "missing.png")], r"missing.png not found"),
    ("empty gallery", _empty_gallery, r"the test gallery of run .* is empty"),
    ("k larger than the gallery", lambda root: ["--k", "99"], r"--k 99 asked, but the gallery .* holds 12 images"),
    ("k zero", lambda root: ["--k", "0"], r"--k 0 asked"),
    ("k not a number", lambda root: ["--k", "many"], r"invalid int value: 'many'"),
    ("unknown option", lambda root: ["--kk", "3"], r"unrecognized arguments: --kk"),
]


@pytest.mark.parametrize("name, damage, message", CASES, ids=[c[0] for c in CASES])
def test_each_bad_input_is_one_line_and_status_2(scratch, capsys, name, damage, message):
    image = scratch / "data/prepared/synthetic-uncropped" / stored(scratch)["paths"][0]
    extra = damage(scratch)
    args = ["query", str(image), "--run", RUN.name, "--root", str(scratch), "--out", str(scratch / "q.png")]
    if extra and not extra[0].startswith("-"):
        args[1] = extra.pop(0)  # the damage names the image
    assert main(args + extra) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dmlbench: error: "), err
    assert re.search(message, err), err
    assert not (scratch / "q.png").exists()  # nothing written


def test_query_needs_a_run_and_an_image(workspace, capsys):
    assert main(["query", "--root", str(workspace)]) == 2
    assert "needs --run <run> and at least one IMAGE" in capsys.readouterr().err


def test_console_script_is_declared():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["dmlbench"] == "dmlbench.cli:main"
