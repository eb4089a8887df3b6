"""A user's own data as <root>/<class>/<image>: classes sorted by name, labels = their index.

Split: the first half of the sorted classes train, the rest test (zero-shot), unless <root>/split.txt
assigns every class itself, one line ``<class folder name> train|test``.
"""

from pathlib import Path

from dmlbench.data.paths import contained_path
from dmlbench.data.records import Record
from dmlbench.data.textfiles import read_lines
from dmlbench.errors import DmlbenchError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
SPLIT_FILE = "split.txt"
LAYOUT = ("expected layout: <root>/<class>/<image>.jpg (any of " + " ".join(sorted(IMAGE_SUFFIXES))
          + "), optionally <root>/split.txt with lines '<class> train|test'")


def _classes(root: Path) -> list[str]:
    """Class folder names, sorted; hidden folders are ignored."""
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(names) < 2:
        raise DmlbenchError(f"{root} has {len(names)} class folder(s), need at least 2: {LAYOUT}")
    return names


def read_split_file(path: Path, classes: list[str]) -> dict[str, str]:
    """Class name -> split from split.txt, which must list every class folder exactly once."""
    splits: dict[str, str] = {}
    for number, line in enumerate(read_lines(path, "write one line '<class> train|test' per class folder"),
                                  start=1):
        if not line.strip():
            continue
        fields = line.rsplit(maxsplit=1)  # class names may hold spaces; the split word is last
        if len(fields) != 2 or fields[1] not in ("train", "test") or fields[0] in splits:
            raise DmlbenchError(f"malformed or repeated line {path}:{number}: {line!r} (expected "
                                f"'<class> train|test', each class once)")
        splits[fields[0]] = fields[1]
    unknown, unlisted = sorted(set(splits) - set(classes)), sorted(set(classes) - set(splits))
    if unknown or unlisted:
        raise DmlbenchError(f"{path} must list exactly the class folders: unknown {unknown[:3]}, "
                            f"unlisted {unlisted[:3]}")
    return splits


def read_folder(root: Path, expected: None = None) -> list[Record]:
    """Records of every image file under <root>/<class>/ (``expected`` is accepted for the registry's sake)."""
    root = Path(root)
    if not root.is_dir():
        raise DmlbenchError(f"dataset folder {root} not found: {LAYOUT}")
    classes = _classes(root)
    split_file = root / SPLIT_FILE
    splits = (read_split_file(split_file, classes) if split_file.is_file()
              else {c: "train" if i < len(classes) // 2 else "test" for i, c in enumerate(classes)})
    records = []
    for label, name in enumerate(classes):
        # A dangling link counts as an image too, so prepare reports it (or skips and lists it) instead of
        # silently leaving it out.
        files = sorted(p for p in (root / name).iterdir()
                       if (p.is_file() or p.is_symlink()) and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DmlbenchError(f"class folder {root / name} holds no image: add images or remove it; {LAYOUT}")
        # A class folder or an image may be a link: whatever it points to must still be inside the root.
        where = f"class folder {root / name}"
        records += [Record(contained_path(root, f"{name}/{p.name}", where), label, splits[name]) for p in files]
    for split in ("train", "test"):
        if split not in splits.values():
            raise DmlbenchError(f"{root}: no class is assigned to {split}: edit {SPLIT_FILE}")
    return records
