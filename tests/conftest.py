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
# ones go first so that neither process ends long after the other, then the other modules with slow tests, then the
# rest. CPU seconds per module on the 2-core Xeon (issue 27), in an order that also lets test_pipeline.py build the
# shared demo repository (tests/pipeline_repo.py) while the other process starts the grid. The order changes no
# result, only when each process finishes.
LONGEST_FIRST = [
    "test_pipeline.py",  # 105 s, 35 of them the shared demo run
    "test_grid_pipeline.py",  # 101
    "test_pipeline_runs.py",  # 83
    "test_pipeline_datasets.py",  # 95
    "test_stage_bad_files.py",  # 82
    "test_pipeline_experiments.py",  # 75
    "test_ddp_train.py",  # 62
    "test_every_method.py",  # 87
    "test_pipeline_unifiedproxy.py",  # 70
    "test_resume.py",  # 50
]


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
