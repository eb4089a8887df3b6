"""A user's own data as <root>/<class>/<image>: classes sorted by name, labels = their index.

Split: the first half of the sorted classes train, the rest test (zero-shot), unless <root>/split.txt
assigns every class itself, one line ``<class folder name> train|test``.

Whatever is not an image of a class is ignored and listed, never dropped without a word: prepare prints one line
counting it and writes each path with its reason to skipped.csv. That is hidden folders and files (names starting
with a dot: .git, .DS_Store, macOS's ._IMG_1.jpg, a class renamed .hidden_c5), files with other extensions, folders
inside a class folder, and files beside the class folders (split.txt apart).
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
# An image of one's own folder that cannot be used is fixed in the folder (there is no archive to restore).
OWN_FIX = "replace it by a readable image or remove it from your folder"
RENAME_FIX = "rename it in your folder (names must not hold control characters or start with a drive like C:)"
# kind -> (what the summary line counts, the reason skipped.csv gives)
IGNORED = {
    "hidden folder": ("hidden folder(s)", "hidden folder (its name starts with a dot) ignored: rename it without "
                                          "the dot to make it a class"),
    "hidden file": ("hidden file(s)", "hidden file (its name starts with a dot) ignored"),
    "other type": ("file(s) of other types", "not an image file extension ignored (images: "
                                             + " ".join(sorted(IMAGE_SUFFIXES)) + ")"),
    "subfolder": ("folder(s) inside class folders", "folder inside a class folder ignored: images must sit "
                                                    "directly in <root>/<class>/"),
    "stray file": ("file(s) beside the class folders", "file beside the class folders ignored: images must sit "
                                                       "in <root>/<class>/"),
}


def _class_files(folder: Path, ignored: list[tuple[str, str]]) -> list[str]:
    """Names of the images in a class folder, sorted; everything else is appended to ``ignored``.

    A dangling link or a FIFO with an image extension counts as an image, so prepare reports it (or skips and
    lists it) instead of leaving it out.
    """
    names = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        relative = f"{folder.name}/{entry.name}"
        if entry.name.startswith("."):
            ignored.append((relative, IGNORED["hidden folder" if entry.is_dir() else "hidden file"][1]))
        elif entry.is_dir():
            ignored.append((relative, IGNORED["subfolder"][1]))
        elif entry.suffix.lower() not in IMAGE_SUFFIXES:
            ignored.append((relative, IGNORED["other type"][1]))
        else:
            names.append(entry.name)
    return names


def scan_folder(root: Path) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """({class folder name: its image names}, [(path relative to root, why it is ignored)]), both sorted."""
    classes: dict[str, list[str]] = {}
    ignored: list[tuple[str, str]] = []
    for entry in sorted(Path(root).iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            ignored.append((entry.name, IGNORED["hidden folder" if entry.is_dir() else "hidden file"][1]))
        elif entry.is_dir():
            classes[entry.name] = _class_files(entry, ignored)
        elif entry.name != SPLIT_FILE:
            ignored.append((entry.name, IGNORED["stray file"][1]))
    return classes, sorted(ignored)


def ignored_summary(ignored: list[tuple[str, str]]) -> str:
    """The ignored entries counted by kind on one line, each kind with its first path (e.g. the hidden class)."""
    parts = []
    for noun, reason in IGNORED.values():
        paths = [path for path, why in ignored if why == reason]
        if paths:
            parts.append(f"{len(paths)} {noun} ({paths[0]}{', ...' if len(paths) > 1 else ''})")
    return ", ".join(parts)


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
    found, _ = scan_folder(root)
    classes = sorted(found)
    if len(classes) < 2:
        raise DmlbenchError(f"{root} has {len(classes)} class folder(s), need at least 2 (hidden folders do not "
                            f"count): {LAYOUT}")
    split_file = root / SPLIT_FILE
    splits = (read_split_file(split_file, classes) if split_file.is_file()
              else {c: "train" if i < len(classes) // 2 else "test" for i, c in enumerate(classes)})
    records = []
    for label, name in enumerate(classes):
        if not found[name]:
            raise DmlbenchError(f"class folder {root / name} holds no image: add images or remove it; {LAYOUT}")
        # A class folder or an image may be a link: whatever it points to must still be inside the root.
        where = f"class folder {root / name}"
        records += [Record(contained_path(root, f"{name}/{file}", where, fix=RENAME_FIX), label, splits[name])
                    for file in found[name]]
    for split in ("train", "test"):
        if split not in splits.values():
            raise DmlbenchError(f"{root}: no class is assigned to {split}: edit {SPLIT_FILE}")
    return records
