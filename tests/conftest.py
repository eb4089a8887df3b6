"""Fixtures shared by the training tests."""

from pathlib import Path

import pytest

from dmlbench.data.prepare import prepare_dataset
from dmlbench.data.readers import read_dataset
from dmlbench.data.synthetic import write_synthetic


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Path:
    """A prepared synthetic dataset of 6 classes x 4 images at 40 px (3 training classes)."""
    root = tmp_path_factory.mktemp("data")
    write_synthetic(root / "raw", num_classes=6, images_per_class=4, image_size=40, seed=0)
    prepare_dataset(read_dataset("synthetic", root / "raw"), root / "raw", root / "prepared", False, 40)
    return root / "prepared"
