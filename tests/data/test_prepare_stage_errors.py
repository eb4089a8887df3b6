"""`python stages/prepare.py` on a corrupted copy of each file it reads (CUB/synthetic layout): one error line.

Every case must end with exit status 2 and exactly one stderr line `dmlbench: error: ...` naming the problem
and its fix, never a traceback (and never a silent success).
"""

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from fake_datasets import write_fake_cub

REPO = Path(__file__).resolve().parents[2]


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG that claims ``width`` x ``height`` pixels: Pillow checks the size before decoding anything."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def set_line(root: Path, name: str, number: int, line: str | None) -> None:
    """Replace (or with None delete) line ``number`` (1-based) of annotation file ``name``."""
    lines = (root / name).read_text().splitlines()
    if line is None:
        del lines[number - 1]
    else:
        lines[number - 1] = line
    (root / name).write_text("\n".join(lines) + "\n")


def image(root: Path, image_id: int) -> Path:
    """The file of ``image_id`` as images.txt lists it."""
    lines = dict(line.split(maxsplit=1) for line in (root / "images.txt").read_text().splitlines())
    return root / "images" / lines[str(image_id)]


def dangle(path: Path, target: Path) -> None:
    path.unlink()
    path.symlink_to(target)


# name -> (corruption of the dataset at root, text the error line must hold)
CASES = {
    "images.txt not UTF-8": (lambda r: (r / "images.txt").write_bytes(b"1 \xff\xfe\x00.jpg\n"),
                             "images.txt is not UTF-8 text"),
    "images.txt absolute path": (lambda r: set_line(r, "images.txt", 3, f"3 {r.parent.parent / 'params.yaml'}"),
                                 "is absolute"),
    "images.txt '..' path": (lambda r: set_line(r, "images.txt", 3, "3 ../../../params.yaml"),
                             "leaves the dataset folder through '..'"),
    "images.txt id without path": (lambda r: set_line(r, "images.txt", 3, "3"), "malformed line"),
    "images.txt empty": (lambda r: (r / "images.txt").write_text(""), "lists no image"),
    "image_class_labels.txt label not a number": (lambda r: set_line(r, "image_class_labels.txt", 3, "3 three"),
                                                  "malformed line"),
    "image_class_labels.txt line missing": (lambda r: set_line(r, "image_class_labels.txt", 3, None),
                                            "has no line in image_class_labels.txt"),
    "image_class_labels.txt not UTF-8": (lambda r: (r / "image_class_labels.txt").write_bytes(b"\x89PNG\r\n\x1a\n"),
                                         "image_class_labels.txt is not UTF-8 text"),
    "bounding_boxes.txt nan": (lambda r: set_line(r, "bounding_boxes.txt", 3, "3 nan 1.0 10.0 10.0"),
                               "non-finite box"),
    "bounding_boxes.txt overflowing": (lambda r: set_line(r, "bounding_boxes.txt", 3, "3 1e308 1.0 1e308 10.0"),
                                       "non-finite box"),
    "bounding_boxes.txt empty box": (lambda r: set_line(r, "bounding_boxes.txt", 3, "3 1.0 1.0 0.0 10.0"),
                                     "empty box"),
    "bounding_boxes.txt box off the image": (lambda r: set_line(r, "bounding_boxes.txt", 3, "3 500 500 10 10"),
                                             "lies outside the"),
    "train_test_split.txt malformed": (lambda r: set_line(r, "train_test_split.txt", 3, "3 x"), "malformed line"),
    "train_test_split.txt not UTF-8": (lambda r: (r / "train_test_split.txt").write_bytes(b"1 \xc3\x28\n"),
                                       "train_test_split.txt is not UTF-8 text"),
    "image truncated": (lambda r: image(r, 5).write_bytes(image(r, 5).read_bytes()[:200]),
                        "corrupt or unreadable image"),
    "image is text": (lambda r: image(r, 5).write_text("<html>404 Not Found</html>\n"), "corrupt or unreadable image"),
    "image too large": (lambda r: image(r, 5).write_bytes(png_header(20_000, 20_000)),
                        "is too large to decode safely"),
    "image 1x1": (lambda r: Image.new("RGB", (1, 1)).save(image(r, 5), format="PNG"),
                  "is 1x1 pixels, below the minimum side of 16"),
    "image 4000x20": (lambda r: Image.new("RGB", (4000, 20)).save(image(r, 5), format="PNG"),
                      "is 4000x20 pixels, an aspect ratio beyond 10:1"),
    "image float with NaN": (lambda r: Image.fromarray(np.full((40, 40), np.nan, np.float32)).save(
        image(r, 5), format="TIFF"), "float image holds NaN or infinite values"),
    "image link leaving the dataset": (lambda r: dangle(image(r, 5), r.parent.parent / "params.yaml"),
                                       "resolves through a symbolic link"),
    "image link broken": (lambda r: dangle(image(r, 5), image(r, 5).with_name("gone.jpg")), "broken symbolic link"),
    "image missing": (lambda r: image(r, 5).unlink(), "missing image"),
}


def run_prepare(workdir: Path) -> subprocess.CompletedProcess:
    """The stage script, run as DVC runs it: from the folder holding params.yaml."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(REPO / "stages/prepare.py")], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A project folder: params.yaml for the synthetic (CUB-layout) dataset, cropped, and a fake data/synthetic."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update(dataset="synthetic", crop="cropped")
    params["prepare"].update(max_side=40, workers=0, skip_corrupt=False)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    write_fake_cub(tmp_path / "data/synthetic")
    return tmp_path


def test_the_intact_fixture_prepares(workdir):
    result = run_prepare(workdir)
    assert result.returncode == 0, result.stderr
    assert (workdir / "data/prepared/synthetic-cropped/train.csv").is_file()


@pytest.mark.parametrize("case", list(CASES))
def test_each_corrupted_file_is_one_error_line(workdir, case):
    corrupt, expected = CASES[case]
    params_before = (workdir / "params.yaml").read_bytes()
    corrupt(workdir / "data/synthetic")
    result = run_prepare(workdir)
    assert result.returncode == 2, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("dmlbench: error:")]
    assert len(errors) == 1, result.stderr
    assert result.stderr.rstrip("\n").endswith(errors[0])  # nothing after it (only a progress bar before)
    assert expected in errors[0], errors[0]
    assert (workdir / "params.yaml").read_bytes() == params_before  # the file some cases point at
    assert not (workdir / "data/prepared/synthetic-cropped/train.csv").exists()
