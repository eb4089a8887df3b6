"""A small prepared synthetic dataset, for the fixtures of the training tests."""

from pathlib import Path

from dmlbench.data.prepare import prepare_dataset
from dmlbench.data.readers import read_dataset
from dmlbench.data.synthetic import write_synthetic


def prepare_synthetic(root: Path, num_classes: int) -> Path:
    """``root``/prepared: a synthetic dataset of ``num_classes`` x 4 images at 40 px, half the classes for training."""
    write_synthetic(root / "raw", num_classes=num_classes, images_per_class=4, image_size=40, seed=0)
    prepare_dataset(read_dataset("synthetic", root / "raw"), root / "raw", root / "prepared", False, 40)
    return root / "prepared"
