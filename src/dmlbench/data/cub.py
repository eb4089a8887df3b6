"""CUB-200-2011 from its original archive layout, with the zero-shot split (first half of the classes train)."""

from pathlib import Path

from dmlbench.data.records import Record
from dmlbench.errors import DmlbenchError

FILES = ("images.txt", "image_class_labels.txt", "bounding_boxes.txt", "classes.txt", "train_test_split.txt")
LAYOUT = "expected <root>/images/ and " + ", ".join(FILES) + " (the extracted CUB_200_2011.tgz)"
PUBLISHED_COUNTS = (5864, 5924)  # train images (classes 1-100), test images (classes 101-200)


def read_table(path: Path, columns: int) -> dict[int, list[str]]:
    """A whitespace-separated annotation file keyed by its first column (an image or class id)."""
    if not path.is_file():
        raise DmlbenchError(f"missing {path}: {LAYOUT}")
    rows: dict[int, list[str]] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(maxsplit=columns - 1)
        if len(fields) != columns or not fields[0].isdigit():
            raise DmlbenchError(f"malformed line {path}:{number}: {line.strip()!r} (expected {columns} columns "
                                f"starting with an id): {LAYOUT}")
        rows[int(fields[0])] = fields[1:]
    return rows


def read_cub(root: Path, expected: tuple[int, int] | None = PUBLISHED_COUNTS) -> list[Record]:
    """Records of every image; classes sorted, first half train, rest test; boxes as (x, y, x+w, y+h)."""
    root = Path(root)
    if not root.is_dir():
        raise DmlbenchError(f"dataset folder {root} not found: {LAYOUT}")
    images = read_table(root / "images.txt", 2)
    labels = read_table(root / "image_class_labels.txt", 2)
    boxes = read_table(root / "bounding_boxes.txt", 5)
    read_table(root / "classes.txt", 2)
    read_table(root / "train_test_split.txt", 2)  # the classification split: checked, not used
    classes = sorted({int(v[0]) for v in labels.values()})
    train_classes = set(classes[: len(classes) // 2])
    records = []
    for image_id, (relative,) in sorted(images.items()):
        if image_id not in labels or image_id not in boxes:
            raise DmlbenchError(f"image id {image_id} of images.txt has no label or box in {root}: {LAYOUT}")
        if not (root / "images" / relative).is_file():
            raise DmlbenchError(f"missing image {root / 'images' / relative} listed in images.txt: {LAYOUT}")
        x, y, w, h = (float(v) for v in boxes[image_id])
        label = int(labels[image_id][0])
        records.append(Record(f"images/{relative}", label, "train" if label in train_classes else "test",
                              (round(x), round(y), round(x + w), round(y + h))))
    _check_counts(records, expected, root)
    return records


def _check_counts(records: list[Record], expected: tuple[int, int] | None, root: Path) -> None:
    found = (sum(r.split == "train" for r in records), sum(r.split == "test" for r in records))
    if expected is not None and found != tuple(expected):
        raise DmlbenchError(f"{root}: expected {expected[0]} train / {expected[1]} test images (the published "
                            f"CUB-200-2011 zero-shot split), found {found[0]} / {found[1]}: re-extract the archive")
