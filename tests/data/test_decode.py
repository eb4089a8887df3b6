"""decode_image (data/decode.py): EXIF orientation applied, boxes in stored pixels, image shapes refused."""

import numpy as np
import pytest
from PIL import Image

from dmlbench.data.decode import MAX_ASPECT, MIN_SIDE, UnreadableImage, decode_image, shape_problem
from fake_datasets import QUADRANTS, write_oriented_jpeg

RED, BLUE, GREEN, YELLOW = QUADRANTS
# Orientation -> the stored quadrants (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) seen at the
# displayed top-left, top-right, bottom-left, bottom-right, worked out by hand from EXIF's definitions
# (e.g. 6, "rotate 90 degrees clockwise to display": the stored left column becomes the top row).
DISPLAYED = {1: (0, 1, 2, 3), 2: (1, 0, 3, 2), 3: (3, 2, 1, 0), 4: (2, 3, 0, 1),
             5: (0, 2, 1, 3), 6: (2, 0, 3, 1), 7: (3, 1, 2, 0), 8: (1, 3, 0, 2)}
JPEG_TOLERANCE = 8  # quadrant centres sit 10+ px from any colour edge: only JPEG's rounding error remains
INSET = 4  # JPEG blurs a colour edge over a few pixels (8x8 blocks, chroma at half resolution)


def quadrant_colours(image: Image.Image) -> list[tuple[int, int, int]]:
    """The colour at the centre of each quadrant: top-left, top-right, bottom-left, bottom-right."""
    w, h = image.size
    return [image.getpixel((x * w // 4, y * h // 4)) for y in (1, 3) for x in (1, 3)]


def close(found, expected) -> bool:
    return all(abs(a - b) <= JPEG_TOLERANCE for f, e in zip(found, expected) for a, b in zip(f, e))


@pytest.mark.parametrize("orientation", sorted(DISPLAYED))
def test_every_exif_orientation_is_turned_upright(tmp_path, orientation):
    path = write_oriented_jpeg(tmp_path / "phone.jpg", orientation)
    image = decode_image(path)
    assert image.size == ((40, 80) if orientation >= 5 else (80, 40))  # 5-8 swap width and height
    assert close(quadrant_colours(image), [QUADRANTS[q] for q in DISPLAYED[orientation]])


def test_a_box_is_in_stored_pixels_and_its_cut_is_turned_upright(tmp_path):
    """CUB's and CARS's convention: the stored top-left quadrant (red, 40x20) is cut, then shown upright (20x40)."""
    path = write_oriented_jpeg(tmp_path / "phone.jpg", 6)
    cut = decode_image(path, box=(0, 0, 40, 20))
    assert cut.size == (20, 40)
    # All red, but for a few pixels along the cut's edges where the fixture's JPEG blurred the next colour in.
    assert np.abs(np.asarray(cut).astype(int)[INSET:-INSET, INSET:-INSET] - RED).max() <= JPEG_TOLERANCE
    # The same box read in displayed pixels would have cut the displayed top strip: green and red.
    upright = decode_image(path)
    assert close([upright.getpixel((10, 10)), upright.getpixel((30, 10))], [GREEN, RED])


def test_invalid_or_unreadable_orientation_keeps_the_stored_pixels(tmp_path):
    for value in (0, 9, 300):
        path = write_oriented_jpeg(tmp_path / f"o{value}.jpg", value)
        image = decode_image(path)
        assert image.size == (80, 40) and close(quadrant_colours(image), list(QUADRANTS))


@pytest.mark.parametrize("size, accepted", [
    ((MIN_SIDE, MIN_SIDE), True), ((MIN_SIDE - 1, MIN_SIDE), False), ((MIN_SIDE, MIN_SIDE - 1), False),
    ((1, 1), False), ((int(MIN_SIDE * MAX_ASPECT), MIN_SIDE), True),
    ((int(MIN_SIDE * MAX_ASPECT) + 1, MIN_SIDE), False), ((MIN_SIDE, int(MIN_SIDE * MAX_ASPECT) + 1), False),
    ((4000, 10), False), ((4000, 400), True)])
def test_shape_thresholds(size, accepted):
    assert (shape_problem(size) is None) == accepted


def test_thresholds_are_16_px_and_10_to_1():
    assert (MIN_SIDE, MAX_ASPECT) == (16, 10.0)  # the values the docs state
    assert shape_problem((1, 1)) == "is 1x1 pixels, below the minimum side of 16"
    assert shape_problem((4000, 10)) == "is 4000x10 pixels, below the minimum side of 16"
    assert shape_problem((4000, 20)) == "is 4000x20 pixels, an aspect ratio beyond 10:1"


def test_a_refused_shape_names_the_file_and_its_fix(tmp_path):
    Image.new("RGB", (4000, 20), "white").save(tmp_path / "strip.png")
    with pytest.raises(UnreadableImage) as err:
        decode_image(tmp_path / "strip.png")
    assert err.value.reason == f"image {tmp_path / 'strip.png'} is 4000x20 pixels, an aspect ratio beyond 10:1"
    assert err.value.fix == "replace it by an image at least 16 px a side and at most 10:1, or remove it"
    assert decode_image(tmp_path / "strip.png", check_shape=False).size == (4000, 20)  # thumbnails of crops


def test_a_directory_is_named_as_one(tmp_path):
    with pytest.raises(UnreadableImage) as err:
        decode_image(tmp_path)
    assert err.value.reason == f"{tmp_path} is a directory, not an image file" and err.value.cause == "directory"
