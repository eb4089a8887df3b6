"""Fixtures shared by the training tests; one torch thread per pytest-xdist worker."""

import os
from pathlib import Path

import pytest

from dmlbench.data.prepare import prepare_dataset
from dmlbench.data.readers import read_dataset
from dmlbench.data.synthetic import write_synthetic

if os.environ.get("PYTEST_XDIST_WORKER"):
    # The workers share the cores: one thread each (and in the subprocesses they start, dvc and torchrun included),
    # instead of every worker oversubscribing every core.
    import torch

    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Path:
    """A prepared synthetic dataset of 6 classes x 4 images at 40 px (3 training classes)."""
    root = tmp_path_factory.mktemp("data")
    write_synthetic(root / "raw", num_classes=6, images_per_class=4, image_size=40, seed=0)
    prepare_dataset(read_dataset("synthetic", root / "raw"), root / "raw", root / "prepared", False, 40)
    return root / "prepared"
