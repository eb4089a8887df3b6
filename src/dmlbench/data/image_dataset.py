"""A torch Dataset over a prepared manifest: (image tensor, contiguous class index)."""

from pathlib import Path
from typing import Callable

import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from dmlbench.errors import DmlbenchError


class ManifestDataset(Dataset):
    """Images listed in a manifest (paths relative to ``root``); labels mapped to 0..C-1 by ``classes``."""

    def __init__(self, root: Path, rows: list[tuple[str, int]], transform: Callable, classes: list[int]):
        self.root = Path(root)
        self.paths = [path for path, _ in rows]
        index = {label: i for i, label in enumerate(classes)}
        self.labels = [index[label] for _, label in rows]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, item: int | tuple[int, int]):
        """``item`` is an index, or (index, seed) to make the random augmentation a function of the seed."""
        i, seed = item if isinstance(item, tuple) else (item, None)
        path = self.root / self.paths[i]
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
        except (OSError, UnidentifiedImageError) as exc:
            raise DmlbenchError(f"cannot read prepared image {path} ({exc}): rerun the prepare stage "
                                f"(dvc repro -f prepare)") from None
        if seed is None:
            return self.transform(image), self.labels[i]
        # Per-sample seeds make augmentation independent of worker count and of where a run resumed.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.transform(image), self.labels[i]


def class_list(rows: list[tuple[str, int]]) -> list[int]:
    """Sorted distinct labels of a manifest: position = the model's class index."""
    return sorted({label for _, label in rows})
