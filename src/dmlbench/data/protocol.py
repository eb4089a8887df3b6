"""Per-dataset evaluation facts shared by every method: the Recall@K list and training class counts."""

from dmlbench.registry import get

# K lists of the seeds' tables (SPEC, "Common to the PyTorch seeds").
RECALL_KS: dict[str, tuple[int, ...]] = {
    "car": (1, 2, 4, 8),
    "cub": (1, 2, 4, 8),
    "sop": (1, 10, 100, 1000),
    "isc": (1, 10, 20, 30, 40, 50),
    "synthetic": (1, 2, 4, 8),
    "folder": (1, 2, 4, 8),  # a user's own data: the CARS/CUB list
}

# Training classes of the zero-shot splits: they size the classifier, hence the params/FLOPs cells.
TRAIN_CLASSES: dict[str, int] = {"car": 98, "cub": 100, "sop": 11318, "isc": 3997}


def recall_ks(dataset: str) -> tuple[int, ...]:
    """The K list a dataset's recall is reported at."""
    return get(RECALL_KS, dataset, "dataset")


def train_classes(dataset: str) -> int:
    """Number of training classes of a real dataset's zero-shot split."""
    return get(TRAIN_CLASSES, dataset, "dataset for the params/FLOPs grid")
