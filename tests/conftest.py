"""Fixtures shared by the training tests; one torch thread per pytest-xdist worker; the longest modules first."""

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


# pytest-xdist hands out whole modules (--dist loadfile) in collection order (--no-loadscope-reorder): the longest
# ones, measured with --durations on 2 cores, go first so that neither process ends long after the other, then the
# other modules with slow tests, then the rest. The order changes no result.
LONGEST_FIRST = []


def pytest_collection_modifyitems(items):
    slow_modules = {item.path for item in items if item.get_closest_marker("slow")}

    def rank(item):
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST) + (
            item.path not in slow_modules)

    items.sort(key=rank)  # stable: each module keeps its own order


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Path:
    """A prepared synthetic dataset of 6 classes x 4 images at 40 px (3 training classes)."""
    return prepare_synthetic(tmp_path_factory.mktemp("data"), 6)
