"""What prepare writes for a 16-bit image, an EXIF-rotated photo (with and without a box) and an image too small
or too elongated to train on: one decode (data/decode.py) behind every dataset."""

import io
import re

import numpy as np
import pytest
import scipy.io
from PIL import Image

from dmlbench.data.cars import read_cars
from dmlbench.data.cub import read_cub
from dmlbench.data.folder import read_folder
from dmlbench.data.prepare import SKIP_REPORT, prepare_dataset, prepared_path, read_skip_report
from dmlbench.errors import DmlbenchError
from fake_datasets import (QUADRANTS, sixteen_bit_gradient, write_fake_cars, write_fake_cub, write_fake_folder,
                           write_oriented_jpeg)

RED = QUADRANTS[0]
JPEG_TOLERANCE = 8  # the prepared files are JPEGs: colours far from an edge come back within a few levels
INSET = 4  # JPEG blurs a colour edge over a few pixels (8x8 blocks, chroma at half resolution): look inside them


def jpeg_bytes(pixels: np.ndarray, quality: int = 95) -> bytes:
    """What Pillow writes for these 8-bit pixels at ``quality``: prepare's output for an exactly scaled image."""
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def test_a_16_bit_png_is_prepared_from_its_scaled_levels(tmp_path):
    root = write_fake_folder(tmp_path / "mine")
    gradient = sixteen_bit_gradient()
    Image.fromarray(gradient).save(root / "cat/000.png")  # mode I;16, every level 0..65535 once
    (root / "cat/000.jpg").unlink()
    prepare_dataset(read_folder(root), root, tmp_path / "out", crop=False, max_side=None)
    # round(v / 257) in integers (no v lands on a half): the 8-bit image the 16-bit one stands for.
    expected = ((2 * gradient.astype(np.int64) + 257) // 514).astype(np.uint8)
    assert (tmp_path / "out" / prepared_path("cat/000.png")).read_bytes() == jpeg_bytes(expected)


def test_a_rotated_photo_of_ones_own_folder_is_prepared_upright(tmp_path):
    root = write_fake_folder(tmp_path / "mine")
    write_oriented_jpeg(root / "dog/phone.jpg", 6)  # stored 80x40, displayed 40x80
    prepare_dataset(read_folder(root), root, tmp_path / "out", crop=False, max_side=None)
    with Image.open(tmp_path / "out" / prepared_path("dog/phone.jpg")) as image:
        assert image.size == (40, 80) and 0x0112 not in image.getexif()  # upright, and no tag left to re-apply
        # Orientation 6: the stored top-left (red) is displayed top-right.
        assert all(abs(a - b) <= JPEG_TOLERANCE for a, b in zip(image.getpixel((30, 20)), RED))


def rotated_cub(root):
    """A fake CUB whose image 1 is the rotated fixture, boxed around its stored top-left quadrant (red, 40x20)."""
    write_fake_cub(root)
    relative = (root / "images.txt").read_text().splitlines()[0].split(maxsplit=1)[1]
    write_oriented_jpeg(root / "images" / relative, 6)
    lines = (root / "bounding_boxes.txt").read_text().splitlines()
    (root / "bounding_boxes.txt").write_text("\n".join(["1 0.0 0.0 40.0 20.0", *lines[1:]]) + "\n")
    return read_cub(root, expected=None), "images/" + relative


def rotated_cars(root):
    """A fake CARS196 whose car_ims/000001.jpg is the rotated fixture, boxed the same way (x1, y1, x2, y2)."""
    write_fake_cars(root)
    write_oriented_jpeg(root / "car_ims/000001.jpg", 6)
    mat = scipy.io.loadmat(root / "cars_annos.mat")
    for field, value in zip(("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2"), (0, 0, 40, 20)):
        mat["annotations"][0, 0][field] = np.array([[value]])
    scipy.io.savemat(root / "cars_annos.mat", {k: v for k, v in mat.items() if not k.startswith("__")})
    return read_cars(root, expected=None), "car_ims/000001.jpg"


@pytest.mark.parametrize("make", [rotated_cub, rotated_cars], ids=["cub", "cars"])
def test_boxes_of_cub_and_cars_are_in_stored_pixels(tmp_path, make):
    """The box cuts the stored red quadrant; the cut is then turned upright (40x20 stored -> 20x40 shown).
    Read in displayed pixels it would have cut half green, half red."""
    records, path = make(tmp_path / "raw")
    prepare_dataset(records, tmp_path / "raw", tmp_path / "out", crop=True, max_side=None)
    with Image.open(tmp_path / "out" / prepared_path(path)) as image:
        assert image.size == (20, 40)
        colours = np.asarray(image).astype(int)
    # All red, but for a few pixels along the cut's edges where the fixture's own JPEG blurred the next colour in.
    assert np.abs(colours[INSET:-INSET, INSET:-INSET] - RED).max() <= JPEG_TOLERANCE


def bad_shapes(root):
    """A 1x1 image and a 4000x10 strip in cat/ of a fake folder; returns their record paths."""
    Image.new("RGB", (1, 1), (90, 90, 90)).save(root / "cat/dot.png")
    Image.new("RGB", (4000, 10), (90, 90, 90)).save(root / "cat/strip.png")
    return ["cat/dot.png", "cat/strip.png"]


def test_a_1x1_image_stops_prepare_with_one_line(tmp_path):
    root = write_fake_folder(tmp_path / "mine")
    bad_shapes(root)
    with pytest.raises(DmlbenchError) as err:
        prepare_dataset(read_folder(root), root, tmp_path / "out", crop=False, max_side=None)
    assert str(err.value) == (f"image {root / 'cat/dot.png'} is 1x1 pixels, below the minimum side of 16: replace "
                              f"it by an image at least 16 px a side and at most 10:1, or remove it, or set "
                              f"prepare.skip_corrupt: true to skip and list such files")
    assert not (tmp_path / "out/train.csv").exists()


@pytest.mark.parametrize("workers", [0, 2])
def test_images_of_unusable_shape_are_skipped_and_listed(tmp_path, workers):
    root = write_fake_folder(tmp_path / "mine")
    paths = bad_shapes(root)
    out = tmp_path / "out"
    summary = prepare_dataset(read_folder(root), root, out, crop=False, max_side=None, workers=workers,
                              skip_corrupt=True)
    assert summary == {"test": {"images": 6, "classes": 2}, "train": {"images": 6, "classes": 2}}
    assert read_skip_report(out / SKIP_REPORT) == [
        (paths[0], f"image {root / paths[0]} is 1x1 pixels, below the minimum side of 16"),
        (paths[1], f"image {root / paths[1]} is 4000x10 pixels, below the minimum side of 16")]
    assert not re.search("dot|strip", (out / "train.csv").read_text() + (out / "test.csv").read_text())
