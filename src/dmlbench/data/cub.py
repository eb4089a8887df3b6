"""CUB-200-2011 from its original archive layout, with the zero-shot split (first half of the classes train)."""

import math
from pathlib import Path

from dmlbench.data.paths import contained_path
from dmlbench.data.records import Record
from dmlbench.data.textfiles import read_lines
from dmlbench.errors import DmlbenchError

FILES = ("images.txt", "image_class_labels.txt", "bounding_boxes.txt", "classes.txt", "train_test_split.txt")
LAYOUT = ("expected layout: <root>/images/<class folder>/<file>.jpg and <root>/" + ", <root>/".join(FILES)
          + " (the extracted CUB_200_2011.tgz)")
PUBLISHED_COUNTS = (5864, 5924)  # train images (classes 1-100), test images (classes 101-200)

# Column types after the leading integer id: "i" int, "f" float, "s" the rest of the line as text.
SCHEMAS = {"images.txt": "s", "image_class_labels.txt": "i", "bounding_boxes.txt": "ffff",
           "classes.txt": "s", "train_test_split.txt": "i"}


def _parse(field: str, kind: str):
    """One typed field; ValueError when it does not parse."""
    if kind == "i":
        return int(field)
    if kind == "f":
        return float(field)
    return field


def read_table(path: Path, schema: str) -> dict[int, tuple]:
    """A whitespace-separated annotation file keyed by its first column (an image or class id)."""
    if not path.is_file():
        raise DmlbenchError(f"missing annotation file {path}: {LAYOUT}")
    rows: dict[int, tuple] = {}
    for number, line in enumerate(read_lines(path, f"restore it from the archive; {LAYOUT}"), start=1):
        line = line.strip()
        if not line:
            continue
        # A trailing text column may hold spaces, so only split it off once.
        fields = line.split(maxsplit=len(schema)) if schema.endswith("s") else line.split()
        try:
            if len(fields) != len(schema) + 1:
                raise ValueError
            key = int(fields[0])
            values = tuple(_parse(f, kind) for f, kind in zip(fields[1:], schema))
        except ValueError:
            raise DmlbenchError(f"malformed line {path}:{number}: {line!r} (expected an integer id then "
                                f"{len(schema)} field(s) of type {schema}); {LAYOUT}") from None
        if key in rows:
            raise DmlbenchError(f"duplicate id {key} at {path}:{number}: each id must appear once; {LAYOUT}")
        rows[key] = values
    return rows


def _relative_image(root: Path, image_id: int, relative: str) -> str:
    """The record path (images/...) of an images.txt entry, checked to stay inside ``root``.

    Whether the file exists is prepare's check, so that prepare.skip_corrupt can skip and list it.
    """
    return contained_path(root, relative, f"{root / 'images.txt'} (image id {image_id})", prefix="images")


def _box(root: Path, image_id: int, x: float, y: float, w: float, h: float) -> tuple[int, int, int, int]:
    """CUB's x, y, width, height -> (x1, y1, x2, y2) in whole pixels."""
    # float() accepts nan, inf and 1e308 (whose x + w overflows to inf); round() refuses all of them.
    if not all(math.isfinite(v) for v in (x, y, w, h, x + w, y + h)):
        raise DmlbenchError(f"{root / 'bounding_boxes.txt'}: image id {image_id} has a non-finite box "
                            f"({x}, {y}, {w}, {h}): restore the file from the archive")
    if w <= 0 or h <= 0:
        raise DmlbenchError(f"{root / 'bounding_boxes.txt'}: image id {image_id} has an empty box "
                            f"(w={w}, h={h}): restore the file from the archive")
    return round(x), round(y), round(x + w), round(y + h)


def read_cub(root: Path, expected: tuple[int, int] | None = PUBLISHED_COUNTS) -> list[Record]:
    """Records of every image; classes sorted, first half train, rest test; boxes as (x, y, x+w, y+h)."""
    root = Path(root)
    if not root.is_dir():
        raise DmlbenchError(f"dataset folder {root} not found: {LAYOUT}")
    tables = {name: read_table(root / name, schema) for name, schema in SCHEMAS.items()}
    # train_test_split.txt is CUB's classification split: parsed as a layout check, never used.
    images, labels, boxes, classes = (tables[name] for name in FILES[:4])
    if not (root / "images").is_dir():
        raise DmlbenchError(f"missing image folder {root / 'images'}: {LAYOUT}")
    class_ids = sorted({label for (label,) in labels.values()})
    unknown = [c for c in class_ids if c not in classes]
    if unknown:
        raise DmlbenchError(f"{root / 'image_class_labels.txt'} uses class ids {unknown[:5]} missing from "
                            f"classes.txt: restore both files from the archive")
    train_classes = set(class_ids[: len(class_ids) // 2])
    records = []
    for image_id, (relative,) in sorted(images.items()):
        if image_id not in labels or image_id not in boxes:
            raise DmlbenchError(f"image id {image_id} of {root / 'images.txt'} has no line in "
                                f"image_class_labels.txt or bounding_boxes.txt: {LAYOUT}")
        (label,) = labels[image_id]
        records.append(Record(_relative_image(root, image_id, relative), label,
                              "train" if label in train_classes else "test",
                              _box(root, image_id, *boxes[image_id])))
    _check_counts(records, expected, root)
    return records


def _check_counts(records: list[Record], expected: tuple[int, int] | None, root: Path) -> None:
    found = (sum(r.split == "train" for r in records), sum(r.split == "test" for r in records))
    if expected is not None and found != tuple(expected):
        raise DmlbenchError(f"{root}: expected {expected[0]} train / {expected[1]} test images (the published "
                            f"CUB-200-2011 zero-shot split), found {found[0]} / {found[1]}: re-extract the "
                            f"complete CUB_200_2011.tgz")
