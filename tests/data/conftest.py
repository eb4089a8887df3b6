"""Fixtures of a tiny fake CUB-200-2011 in the original archive layout (6 classes x 3 images)."""

from pathlib import Path

import pytest

from fake_datasets import write_fake_cub


@pytest.fixture
def fake_cub(tmp_path: Path) -> Path:
    """A fresh 6-class x 3-image fake CUB under tmp_path/cub."""
    return write_fake_cub(tmp_path / "cub")


@pytest.fixture
def make_fake_cub():
    """The generator itself, for tests that need another size."""
    return write_fake_cub
