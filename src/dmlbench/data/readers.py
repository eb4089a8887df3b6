"""Dataset registry: name -> reader of the original layout, returning Records with the zero-shot split.

Every reader is ``reader(root, expected=<published counts>)``; ``expected=None`` skips the count check.
"""

import sys
from functools import partial
from pathlib import Path
from typing import Callable

from dmlbench.data.cars import read_cars
from dmlbench.data.counts import split_counts
from dmlbench.data.cub import PUBLISHED_COUNTS, read_cub
from dmlbench.data.folder import OWN_FIX, read_folder, scan_folder
from dmlbench.data.inshop import read_inshop
from dmlbench.data.prepare import RESTORE_FIX
from dmlbench.data.records import Record
from dmlbench.data.sop import read_sop
from dmlbench.registry import get

READERS: dict[str, Callable[..., list[Record]]] = {
    "car": read_cars,  # CARS196: 8,054 / 8,131 images, classes 1-98 / 99-196
    "cub": partial(read_cub, expected=PUBLISHED_COUNTS),  # checks the published 5,864 / 5,924 split
    "folder": read_folder,  # <root>/<class>/<image>, the user's own data
    "isc": read_inshop,  # In-shop: 25,882 train, 14,218 query, 12,612 gallery
    "sop": read_sop,  # Stanford Online Products: 59,551 / 60,502 images
    "synthetic": partial(read_cub, expected=None),  # the same layout, any size
}

NO_PUBLISHED_COUNTS = {"folder", "synthetic"}  # any size is valid: nothing to relax, nothing to warn about
IMAGE_FIXES = {"folder": OWN_FIX, "synthetic": "regenerate the dataset (dvc repro -f synthesize)"}


def image_fix(name: str) -> str:
    """What to do about an unusable image of dataset ``name``, when the problem has no fix of its own."""
    return IMAGE_FIXES.get(name, RESTORE_FIX)


def ignored_entries(name: str, root: Path) -> list[tuple[str, str]]:
    """(path, reason) of the files a reader leaves out of the dataset: a folder's non-images; [] for the
    published layouts, whose lists name every image."""
    return scan_folder(Path(root))[1] if name == "folder" else []


def read_dataset(name: str, root: Path, check_counts: bool = True) -> list[Record]:
    """Records of dataset ``name`` read from ``root`` (unknown names list the choices).

    ``check_counts=False`` skips the published-count check, saying so on stderr with the counts found.
    """
    reader = get(READERS, name, "dataset")
    if check_counts or name in NO_PUBLISHED_COUNTS:
        return reader(Path(root))
    records = reader(Path(root), expected=None)
    found = ", ".join(f"{key} {value}" for key, value in sorted(split_counts(records).items()))
    print(f"dmlbench: warning: prepare.check_counts is false: {name} split counts NOT checked against the "
          f"published ones (found {found})", file=sys.stderr)
    return records
