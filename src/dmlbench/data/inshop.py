"""In-shop Clothes Retrieval from its published layout: list_eval_partition.txt, train / query / gallery.

Images are the low-resolution ``img/`` folder (``Img/img.zip``), not ``img_highres/``, with no filtering:
what the seeds read. The list's paths start with ``img/``, so they resolve against ``<root>/Img/`` when that
folder exists (the archive's own tree) and against ``<root>/`` otherwise (a flattened copy).
"""

from pathlib import Path

from dmlbench.data.counts import Counts, check_counts
from dmlbench.data.paths import contained_path
from dmlbench.data.records import Record
from dmlbench.data.textfiles import read_lines
from dmlbench.errors import DmlbenchError

LIST_NAMES = ("Eval/list_eval_partition.txt", "list_eval_partition.txt")
HEADER = ["image_name", "item_id", "evaluation_status"]
SPLITS = ("train", "query", "gallery")
LAYOUT = ("expected layout: <root>/Eval/list_eval_partition.txt and <root>/Img/img/ (the archive's tree), or "
          "<root>/list_eval_partition.txt and <root>/img/")
PUBLISHED_COUNTS: Counts = {"train": 25882, "query": 14218, "gallery": 12612, "train classes": 3997}


def _list_file(root: Path) -> Path:
    for name in LIST_NAMES:
        if (root / name).is_file():
            return root / name
    raise DmlbenchError(f"missing annotation file {root / LIST_NAMES[0]} (or {root / LIST_NAMES[1]}): {LAYOUT}")


def _item(path: Path, number: int, item_id: str) -> int:
    """id_00000001 -> 1."""
    digits = item_id.removeprefix("id_")
    # isdecimal, not isdigit: int() refuses superscripts and other digits that are not decimal.
    if not item_id.startswith("id_") or not digits.isdecimal():
        raise DmlbenchError(f"{path}:{number}: item id {item_id!r} is not of the form id_<digits>: restore the "
                            f"file from the archive")
    return int(digits)


def _row(root: Path, path: Path, number: int, line: str, base: str) -> Record:
    """The record of one list line; its image path is relative to ``root``/``base`` and must stay in ``root``."""
    fields = line.split()
    if len(fields) != 3 or fields[2] not in SPLITS:
        raise DmlbenchError(f"malformed line {path}:{number}: {line!r} (expected: image_name item_id "
                            f"train|query|gallery); {LAYOUT}")
    return Record(contained_path(root, fields[0], f"{path}:{number}", prefix=base), _item(path, number, fields[1]),
                  fields[2])


def read_inshop(root: Path, expected: Counts | None = PUBLISHED_COUNTS) -> list[Record]:
    """Records with splits train, query and gallery; label = the item id's number."""
    root = Path(root)
    if not root.is_dir():
        raise DmlbenchError(f"dataset folder {root} not found: {LAYOUT}")
    path = _list_file(root)
    lines = read_lines(path, f"restore it from the archive; {LAYOUT}")
    if len(lines) < 2 or lines[1].split() != HEADER:
        found = lines[1] if len(lines) > 1 else ""
        raise DmlbenchError(f"{path}: line 2 must be the header '{' '.join(HEADER)}', found {found!r}: restore "
                            f"the file from the archive")
    base = "Img" if (root / "Img").is_dir() else "."
    records = [_row(root, path, number, line, base)
               for number, line in enumerate(lines[2:], start=3) if line.strip()]
    if not lines[0].strip().isdecimal() or int(lines[0]) != len(records):
        raise DmlbenchError(f"{path}: line 1 says {lines[0].strip()!r} images but {len(records)} are listed: "
                            f"restore the file from the archive")
    check_counts(records, expected, "In-shop", root, "re-download the complete list_eval_partition.txt and img.zip")
    return records
