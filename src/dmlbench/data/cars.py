"""CARS196 from its published layouts, with the zero-shot split by class (first half train, 1-98 of 196).

Two layouts are accepted: the all-in-one ``cars_annos.mat`` + ``car_ims/`` (what the seeds read) and the
devkit release (``devkit/cars_train_annos.mat``, ``cars_test_annos_withlabels.mat``, ``cars_train/``,
``cars_test/``). Both give the same images and labels, so the same zero-shot split; the official
train/test flag (a classification split) is ignored.
"""

from pathlib import Path

import numpy as np
import scipy.io

from dmlbench.data.counts import Counts, check_counts
from dmlbench.data.paths import contained_path
from dmlbench.data.records import Record
from dmlbench.errors import DmlbenchError

LAYOUT = ("expected layout: <root>/cars_annos.mat + <root>/car_ims/ (car_ims.tgz), or the devkit: "
          "<root>/devkit/cars_train_annos.mat, <root>/cars_test_annos_withlabels.mat, <root>/cars_train/, "
          "<root>/cars_test/")
PUBLISHED_COUNTS: Counts = {"train": 8054, "test": 8131, "train classes": 98, "test classes": 98}
BOX_FIELDS = ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2")


def load_annotations(path: Path, fields: tuple[str, ...]) -> list[dict]:
    """The ``annotations`` struct array of a .mat file as one dict per entry (only ``fields``)."""
    if not path.is_file():
        raise DmlbenchError(f"missing annotation file {path}: {LAYOUT}")
    try:
        annotations = np.atleast_1d(scipy.io.loadmat(path, squeeze_me=True)["annotations"])
        rows = [{name: entry[name] for name in fields} for entry in annotations]
    except Exception as exc:  # scipy raises many types for damaged files; all mean "re-download"
        raise DmlbenchError(f"unreadable annotation file {path} ({type(exc).__name__}: {exc}): "
                            f"re-download it; {LAYOUT}".replace("\n", " ")) from None
    return rows


def _record_parts(path: Path, entry: dict) -> tuple[int, tuple[int, int, int, int]]:
    """Class id and box of one annotation, with a one-line error for a malformed entry."""
    try:
        return int(entry["class"]), tuple(int(entry[name]) for name in BOX_FIELDS)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an infinite value
        raise DmlbenchError(f"malformed annotation in {path}: {entry!r}: re-download it") from None


def _image_path(root: Path, annotation_file: Path, index: int, relative, prefix: str = "") -> str:
    """The record path of annotation ``index`` (0-based) of ``annotation_file``, checked to stay inside ``root``."""
    return contained_path(root, str(relative), f"{annotation_file} (annotation {index + 1})", prefix)


def _from_annos(root: Path) -> list[tuple[str, int, tuple]]:
    """(path, class, box) from cars_annos.mat; paths are relative to the root (car_ims/000001.jpg)."""
    path = root / "cars_annos.mat"
    entries = load_annotations(path, ("relative_im_path", "class", *BOX_FIELDS))
    return [(_image_path(root, path, i, e["relative_im_path"]), *_record_parts(path, e))
            for i, e in enumerate(entries)]


def _devkit_test_file(root: Path) -> Path:
    """The labelled test annotations, shipped apart from the devkit: accept it at the root or in devkit/."""
    for candidate in (root / "cars_test_annos_withlabels.mat", root / "devkit/cars_test_annos_withlabels.mat"):
        if candidate.is_file():
            return candidate
    return root / "cars_test_annos_withlabels.mat"


def _from_devkit(root: Path) -> list[tuple[str, int, tuple]]:
    """(path, class, box) from the devkit's train and labelled-test annotation files."""
    rows = []
    for path, folder in ((root / "devkit/cars_train_annos.mat", "cars_train"),
                         (_devkit_test_file(root), "cars_test")):
        entries = load_annotations(path, ("fname", "class", *BOX_FIELDS))
        rows += [(_image_path(root, path, i, e["fname"], prefix=folder), *_record_parts(path, e))
                 for i, e in enumerate(entries)]
    return rows


def read_cars(root: Path, expected: Counts | None = PUBLISHED_COUNTS) -> list[Record]:
    """Records of every image; classes sorted, first half train, rest test; boxes (x1, y1, x2, y2)."""
    root = Path(root)
    if not root.is_dir():
        raise DmlbenchError(f"dataset folder {root} not found: {LAYOUT}")
    devkit = (root / "devkit").is_dir() and not (root / "cars_annos.mat").exists()  # cars_annos.mat wins
    rows = _from_devkit(root) if devkit else _from_annos(root)
    classes = sorted({label for _, label, _ in rows})
    train = set(classes[: len(classes) // 2])
    records = [Record(path, label, "train" if label in train else "test", box) for path, label, box in rows]
    check_counts(records, expected, "CARS196", root, "re-extract the complete car_ims.tgz and cars_annos.mat")
    return records
