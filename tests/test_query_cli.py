"""`dmlbench query` end to end on a tiny untrained run, and one error line (exit status 2) for each bad input."""

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dmlbench import atomic
from dmlbench.cli import main
from dmlbench.cli.query import read_image
from dmlbench.reporting.pictures import BLUE, BORDER, GREEN, RED, THUMB, cell_box
from dmlbench.retrieval.ranking import top_k
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


def _tiny_image(root: Path) -> list[str]:
    Image.new("RGB", (1, 1), "white").save(root / "dot.png")
    return [str(root / "dot.png")]


def _file_in_the_way(root: Path) -> list[str]:
    (root / "notes").write_text("mine")  # root itself is writable to root: a file stops the folder's creation
    return ["--out", str(root / "notes/q.png")]


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
    ("not an image", _not_an_image, r"corrupt or unreadable image .*x.jpg \(UnidentifiedImageError: .*\): pass"),
    ("missing image", lambda root: [str(root / "missing.png")], r"missing image .*missing.png: pass the path of"),
    ("directory as the image", lambda root: [str(root / "data")],
     r"/data is a directory, not an image file: pass the image files in it \(e.g. .*/data/\*.jpg\)$"),
    ("1x1 image", _tiny_image, r"dot.png is 1x1 pixels, below the minimum side of 16: pass an image at least 16 px"),
    ("out a directory", lambda root: ["--out", str(root / "data")],
     r"--out .*/data is a directory: name the picture file, e.g. --out .*/data/query.png$"),
    ("out not a picture", lambda root: ["--out", str(root / "notes.md")], r"written as .png or .jpg, not as .md"),
    ("out without extension", lambda root: ["--out", str(root / "query")], r"not as a name without extension"),
    ("out in models", lambda root: ["--out", str(root / "models/x.png")],
     r"--out .*/models/x.png lies in .*/models, where the pipeline keeps its outputs"),
    ("out over a pipeline picture", lambda root: ["--out", str(root / "plots/queries.png")], r"lies in .*/plots"),
    ("out where a folder is a file", _file_in_the_way,
     r"cannot write --out .*notes/q.png \((NotADirectoryError|FileExistsError): .*\): pass a path in a folder you "
     r"can write to"),
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


def query_args(root: Path, *extra: str, image: Path | None = None) -> list[str]:
    """A query of ``image`` (by default a gallery image) with K = 2, then ``extra``."""
    image = image or root / "data/prepared/synthetic-uncropped" / stored(root)["paths"][0]
    return ["query", str(image), "--run", RUN.name, "--root", str(root), "--k", "2", *extra]


def test_out_never_overwrites_a_file_git_tracks(scratch, capsys):
    (scratch / "README.md").write_text("# my project\n")
    Image.new("RGB", (20, 20), "white").save(scratch / "logo.png")
    (scratch / "link.png").symlink_to(scratch / "README.md")
    subprocess.run(["git", "init", "-q", str(scratch)], check=True)
    subprocess.run(["git", "-C", str(scratch), "add", "README.md", "logo.png"], check=True)
    before = {name: (scratch / name).read_bytes() for name in ("README.md", "logo.png")}
    for out, message in [("README.md", "written as .png or .jpg, not as .md"),
                         ("logo.png", f"would overwrite {scratch / 'logo.png'}, a file git tracks"),
                         ("link.png", f"would overwrite {scratch / 'README.md'}, a file git tracks")]:
        assert main(query_args(scratch, "--out", str(scratch / out))) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert {name: (scratch / name).read_bytes() for name in before} == before
    assert (scratch / "link.png").is_symlink()
    assert main(query_args(scratch, "--out", str(scratch / "new.png"))) == 0  # untracked names are fine


def test_out_jpg_writes_a_jpeg(workspace, tmp_path):
    assert main(query_args(workspace, "--out", str(tmp_path / "q.JPG"))) == 0
    with Image.open(tmp_path / "q.JPG") as picture:
        assert picture.format == "JPEG"


def phone_photo(path: Path) -> Path:
    """Stored 80x40, left half red and right half blue, tagged EXIF orientation 6: displayed 40x80, red on top."""
    pixels = np.zeros((40, 80, 3), dtype=np.uint8)
    pixels[:, :40], pixels[:, 40:] = (220, 30, 30), (30, 30, 220)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(path, quality=95, exif=exif)
    return path


def test_query_decodes_images_as_prepare_does(tmp_path):
    gradient = np.arange(65536, dtype=np.uint32).reshape(256, 256).astype(np.uint16)
    Image.fromarray(gradient).save(tmp_path / "deep.png")  # 16-bit greyscale
    levels = read_image(tmp_path / "deep.png", np.asarray)
    assert (levels[..., 0] == (2 * gradient.astype(np.int64) + 257) // 514).all()  # round(v / 257), not clipped
    assert read_image(phone_photo(tmp_path / "phone.jpg"), lambda image: image.size) == (40, 80)


def test_the_query_picture_shows_the_photo_upright(workspace, tmp_path):
    out = tmp_path / "q.png"
    assert main(["query", str(phone_photo(tmp_path / "phone.jpg")), "--run", RUN.name, "--root", str(workspace),
                 "--k", "1", "--out", str(out)]) == 0
    left, top = cell_box(0, 0)[:2]
    inside = (left + BORDER + THUMB // 4, top + BORDER)  # the 48x96 thumbnail's column band, centred
    with Image.open(out) as picture:
        upper = picture.getpixel((inside[0] + THUMB // 4, inside[1] + THUMB // 4))
        lower = picture.getpixel((inside[0] + THUMB // 4, inside[1] + 3 * THUMB // 4))
    # Red above blue (far from the colour edge: only JPEG and resampling error, within 12 levels); sideways, the
    # thumbnail would be 96x48 with red left of blue.
    assert max(abs(a - b) for a, b in zip(upper, (220, 30, 30))) <= 12
    assert max(abs(a - b) for a, b in zip(lower, (30, 30, 220))) <= 12


def test_a_small_prepared_crop_is_a_valid_query_and_the_same_file_elsewhere_is_not(scratch, tmp_path, capsys):
    """Prepare checks the source image, not its crop: a prepared crop 12 px high was accepted there already."""
    crop = scratch / "data/prepared/synthetic-uncropped/images/small.png"
    Image.new("RGB", (36, 12), (200, 40, 40)).save(crop)
    assert main(query_args(scratch, "--out", str(tmp_path / "a.png"), image=crop)) == 0
    shutil.copy(crop, tmp_path / "small.png")
    assert main(query_args(scratch, "--out", str(tmp_path / "b.png"), image=tmp_path / "small.png")) == 2
    assert "small.png is 36x12 pixels, below the minimum side of 16" in capsys.readouterr().err
