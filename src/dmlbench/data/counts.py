"""The published split sizes of each real dataset, checked on every read (the split is proved by counts)."""

from collections import Counter
from pathlib import Path

from dmlbench.data.records import Record
from dmlbench.errors import DmlbenchError

Counts = dict[str, int]  # "train", "test", "query", "gallery" images; "<split> classes" distinct labels


def split_counts(records: list[Record]) -> Counts:
    """Images per split and distinct labels per split, keyed as in the published-count dicts."""
    counts: Counts = dict(Counter(r.split for r in records))
    for split in list(counts):
        counts[f"{split} classes"] = len({r.label for r in records if r.split == split})
    return counts


def _show(counts: Counts, keys) -> str:
    return ", ".join(f"{key} {counts.get(key, 0):,}" for key in keys)


def check_counts(records: list[Record], expected: Counts | None, dataset: str, root: Path, fix: str) -> None:
    """Raise one line with expected vs found when any published count differs (``None`` skips the check)."""
    if expected is None:
        return
    found = split_counts(records)
    if any(found.get(key, 0) != value for key, value in expected.items()):
        raise DmlbenchError(f"{root}: expected {_show(expected, expected)} (the published {dataset} split), "
                            f"found {_show(found, expected)}: {fix}, or set prepare.check_counts: false "
                            f"for a partial copy")
