"""Stanford Online Products from its published layout: Ebay_train.txt / Ebay_test.txt, label = class_id."""

from pathlib import Path

from dmlbench.data.counts import Counts, check_counts
from dmlbench.data.paths import contained_path
from dmlbench.data.records import Record
from dmlbench.data.textfiles import read_lines
from dmlbench.errors import DmlbenchError

HEADER = ["image_id", "class_id", "super_class_id", "path"]
LAYOUT = ("expected layout: <root>/Ebay_train.txt, <root>/Ebay_test.txt (header 'image_id class_id "
          "super_class_id path') and the image folders they list, e.g. <root>/bicycle_final/ (the extracted "
          "Stanford_Online_Products.zip)")
PUBLISHED_COUNTS: Counts = {"train": 59551, "test": 60502, "train classes": 11318, "test classes": 11316}


def _row(path: Path, number: int, line: str) -> tuple[str, int]:
    """(image path, class_id) of one list line, with a one-line error naming file and line."""
    fields = line.split()
    try:
        if len(fields) != 4:
            raise ValueError
        int(fields[0]), int(fields[2])
        label, relative = int(fields[1]), fields[3]
    except ValueError:
        raise DmlbenchError(f"malformed line {path}:{number}: {line!r} (expected 4 fields: "
                            f"{' '.join(HEADER)}); {LAYOUT}") from None
    return contained_path(path.parent, relative, f"{path}:{number}"), label  # paths are relative to the root


def read_list(path: Path, split: str) -> list[Record]:
    """The records of one Ebay_*.txt list, after checking its header line."""
    if not path.is_file():
        raise DmlbenchError(f"missing annotation file {path}: {LAYOUT}")
    lines = read_lines(path, f"restore it from the archive; {LAYOUT}")
    if not lines or lines[0].split() != HEADER:
        found = lines[0] if lines else ""
        raise DmlbenchError(f"{path} must start with the header '{' '.join(HEADER)}', found {found!r}: "
                            f"restore it from the archive")
    return [Record(*_row(path, number, line), split)
            for number, line in enumerate(lines[1:], start=2) if line.strip()]


def read_sop(root: Path, expected: Counts | None = PUBLISHED_COUNTS) -> list[Record]:
    """Records of Ebay_train.txt (train) and Ebay_test.txt (test), labels = class_id."""
    root = Path(root)
    if not root.is_dir():
        raise DmlbenchError(f"dataset folder {root} not found: {LAYOUT}")
    records = read_list(root / "Ebay_train.txt", "train") + read_list(root / "Ebay_test.txt", "test")
    shared = {r.label for r in records if r.split == "train"} & {r.label for r in records if r.split == "test"}
    if shared:
        raise DmlbenchError(f"{root}: class ids {sorted(shared)[:5]} appear in both Ebay_train.txt and "
                            f"Ebay_test.txt, so the split is not zero-shot: restore both files from the archive")
    check_counts(records, expected, "Stanford Online Products", root,
                 "re-extract the complete Stanford_Online_Products.zip")
    return records
