"""Fixtures shared by the training tests; one torch thread per pytest-xdist worker."""

import os
from pathlib import Path

import pytest

from prepared_data import prepare_synthetic

if os.environ.get("PYTEST_XDIST_WORKER"):
    # The workers share the cores: one thread each (and in the subprocesses they start, dvc and torchrun included),
    # instead of every worker oversubscribing every core.
    import torch

    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Path:
    """A prepared synthetic dataset of 6 classes x 4 images at 40 px (3 training classes)."""
    return prepare_synthetic(tmp_path_factory.mktemp("data"), 6)
