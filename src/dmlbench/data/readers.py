"""Dataset registry: name -> reader of the original layout, returning Records with the zero-shot split."""

from functools import partial
from pathlib import Path
from typing import Callable

from dmlbench.data.cub import PUBLISHED_COUNTS, read_cub
from dmlbench.data.records import Record
from dmlbench.registry import get

READERS: dict[str, Callable[[Path], list[Record]]] = {
    "cub": partial(read_cub, expected=PUBLISHED_COUNTS),  # checks the published 5,864 / 5,924 split
    "synthetic": partial(read_cub, expected=None),  # the same layout, any size
}


def read_dataset(name: str, root: Path) -> list[Record]:
    """Records of dataset ``name`` read from ``root`` (unknown names list the choices)."""
    return get(READERS, name, "dataset")(Path(root))
