"""A tiny fake CUB-200-2011 in the original archive layout (6 classes x 3 images) for the data tests."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Real CUB class folders and file-name stems, so paths look like the archive's.
CLASSES = ("001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross",
           "004.Groove_billed_Ani", "005.Crested_Auklet", "006.Least_Auklet")
SIZES = ((60, 40), (40, 60), (50, 50))  # width x height, cycled over the images of a class


def fake_box(image_id: int, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """A fractional x, y, w, h box inside the image, as in bounding_boxes.txt."""
    w, h = size
    return (2.4 + image_id % 3, 3.6, w / 2 + 0.3, h / 3)


def write_fake_cub(root: Path, num_classes: int = 6, per_class: int = 3) -> Path:
    """Write images/ and the five annotation files; returns ``root``."""
    lines = {name: [] for name in ("images", "image_class_labels", "bounding_boxes", "classes",
                                   "train_test_split")}
    image_id = 0
    for c, folder in enumerate(CLASSES[:num_classes], start=1):
        lines["classes"].append(f"{c} {folder}")
        stem = folder.split(".", 1)[1].title()
        for i in range(per_class):
            image_id += 1
            size = SIZES[i % len(SIZES)]
            relative = f"{folder}/{stem}_{i + 1:04d}_{100 + image_id}.jpg"
            path = root / "images" / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            pixels = np.random.default_rng(image_id).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels, "RGB").save(path, quality=90)
            lines["images"].append(f"{image_id} {relative}")
            lines["image_class_labels"].append(f"{image_id} {c}")
            lines["bounding_boxes"].append(f"{image_id} " + " ".join(map(str, fake_box(image_id, size))))
            lines["train_test_split"].append(f"{image_id} {i % 2}")
    for name, content in lines.items():
        (root / f"{name}.txt").write_text("\n".join(content) + "\n")
    return root


@pytest.fixture
def fake_cub(tmp_path: Path) -> Path:
    """A fresh 6-class x 3-image fake CUB under tmp_path/cub."""
    return write_fake_cub(tmp_path / "cub")


@pytest.fixture
def make_fake_cub():
    """The generator itself, for tests that need another size."""
    return write_fake_cub
