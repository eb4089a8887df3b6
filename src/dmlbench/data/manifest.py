"""Prepared-split manifests: CSV files with a `path,label` header, paths relative to the prepared folder."""

import csv
import io
from pathlib import Path

from dmlbench import atomic
from dmlbench.errors import DmlbenchError

HEADER = ["path", "label"]


def write_manifest(path: Path, rows: list[tuple[str, int]]) -> None:
    """Write rows atomically (Unix newlines, so the file's bytes are platform-independent)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    atomic.write_text(path, buffer.getvalue())


def read_manifest(path: Path) -> list[tuple[str, int]]:
    """Rows of a manifest, checking the header."""
    path = Path(path)
    if not path.is_file():
        raise DmlbenchError(f"manifest {path} not found: run the prepare stage (dvc repro prepare)")
    with path.open(newline="") as f:
        reader = csv.reader(f)
        if next(reader, None) != HEADER:
            raise DmlbenchError(f"manifest {path} must start with the header 'path,label': rerun dvc repro prepare")
        rows = []
        for number, row in enumerate(reader, start=2):
            try:
                path_, label = row
                rows.append((path_, int(label)))
            except ValueError:
                raise DmlbenchError(f"malformed manifest line {path}:{number}: {row!r} (expected path,label "
                                    f"with an integer label): rerun dvc repro prepare") from None
        return rows


# Self-retrieval datasets have test.csv; In-shop style datasets have query.csv + gallery.csv.
EVAL_LAYOUTS = (("test",), ("query", "gallery"))


def eval_splits(prepared: Path) -> tuple[str, ...]:
    """Which evaluation manifests a prepared dataset has."""
    for splits in EVAL_LAYOUTS:
        if all((prepared / f"{s}.csv").is_file() for s in splits):
            return splits
    raise DmlbenchError(f"{prepared} has neither test.csv nor query.csv + gallery.csv: rerun dvc repro prepare")
