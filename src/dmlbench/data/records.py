"""What a dataset reader yields: one record per image, before any decoding."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Record:
    """An image of a dataset: path relative to the raw root (POSIX), class id, split, optional box."""

    path: str
    label: int
    split: str  # "train" | "test" | "query" | "gallery"
    box: tuple[int, int, int, int] | None = None  # x1, y1, x2, y2 in pixels
