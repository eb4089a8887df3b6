"""16- and 32-bit greyscale images become 8-bit RGB by scaling their range (data/bit_depth.py), not by clipping."""

import io

import numpy as np
import pytest
from PIL import Image

from dmlbench.data.bit_depth import NoDisplayRange, to_rgb8, value_range
from fake_datasets import sixteen_bit_gradient


def nearest_level(values: np.ndarray, black: int, white: int) -> np.ndarray:
    """round((v - black) * 255 / (white - black)) in exact integer arithmetic, halves rounded up.

    No value tested lands exactly on a half level (for 0..65535, v / 257 is never k + 1/2 for an integer v), so this
    and numpy's half-to-even rounding must agree exactly.
    """
    span = white - black
    return ((2 * 255 * (values.astype(np.int64) - black) + span) // (2 * span)).astype(np.uint8)


def reopened(image: Image.Image, fmt: str) -> Image.Image:
    """``image`` saved as ``fmt`` and read back, as a user's file would be."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    buffer.seek(0)
    return Image.open(buffer)


def grey(image: Image.Image) -> np.ndarray:
    """The one channel of an RGB image whose three channels must be equal."""
    pixels = np.asarray(image)
    assert image.mode == "RGB" and (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
    return pixels[..., 0]


@pytest.mark.parametrize("fmt, mode", [("PNG", "I;16"), ("TIFF", "I;16"), ("PPM", "I")])
def test_a_full_range_16_bit_gradient_keeps_every_level(fmt, mode):
    gradient = sixteen_bit_gradient()
    image = reopened(Image.fromarray(gradient), fmt)
    assert image.mode == mode  # Pillow reads a 16-bit PGM as 32-bit "I": the same 0..65535 values
    levels = grey(to_rgb8(image))
    assert (levels == nearest_level(gradient, 0, 65535)).all()
    # Each 8-bit level k takes the 257 values nearest to 257 k: 129 for the two ends (half a step), 257 between.
    counts = np.bincount(levels.ravel(), minlength=256)
    assert counts[0] == counts[255] == 129 and (counts[1:255] == 257).all()
    assert (levels == 255).mean() == 129 / 65536  # clipping at 255 had made 99.6 % of it white


def test_big_endian_16_bit_is_read_by_value():
    values = np.array([[0, 257, 32768, 65535]], dtype=">u2")
    image = Image.frombytes("I;16B", (4, 1), values.tobytes())
    assert grey(to_rgb8(image)).tolist() == [[0, 1, 128, 255]]  # 32768 / 257 = 127.5019 -> 128


@pytest.mark.parametrize("values, black, white", [
    ([0, 1000, 65535], 0, 65535),  # 16-bit data in the 32-bit mode
    ([-32768, 0, 32767], -32768, 32767),  # signed 16-bit (a TIFF's I;16S)
    ([0, 70000, 2 ** 31 - 1], 0, 2 ** 31 - 1),
    ([-(2 ** 31), 0, 2 ** 31 - 1], -(2 ** 31), 2 ** 31 - 1)])
def test_32_bit_integers_take_the_first_standard_range_holding_them(values, black, white):
    data = np.array([values], dtype=np.int32)
    image = Image.fromarray(data)
    assert image.mode == "I" and value_range("I", data.astype(np.float64)) == (black, white)
    assert grey(to_rgb8(image)).tolist() == nearest_level(data, black, white).tolist()


@pytest.mark.parametrize("values, expected", [
    ([0.0, 0.25, 1.0], [0, 64, 255]),  # 0..1: 63.75 -> 64
    ([0.0, 2.0, 128.0, 255.0], [0, 2, 128, 255]),  # Pillow's own float convention, 0..255
    ([0.0, 300.0, 65535.0], [0, 1, 255])])  # 300 / 257 = 1.17 -> 1
def test_float_images_take_the_first_standard_range_holding_them(values, expected):
    image = Image.fromarray(np.array([values], dtype=np.float32))
    assert image.mode == "F" and grey(to_rgb8(reopened(image, "TIFF"))).tolist() == [expected]


@pytest.mark.parametrize("values, message", [
    ([0.0, float("nan")], "NaN or infinite"),
    ([0.0, float("inf")], "NaN or infinite"),
    ([-1.0, 0.5], "fit none of 0..1, 0..255, 0..65535"),
    ([0.0, 70000.0], "fit none of 0..1, 0..255, 0..65535")])
def test_float_images_without_a_display_range_are_refused(values, message):
    with pytest.raises(NoDisplayRange, match=message):
        to_rgb8(Image.fromarray(np.array([values], dtype=np.float32)))


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "CMYK", "1"])
def test_8_bit_modes_convert_as_pillow_does(mode):
    image = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5, "RGB").convert(mode)
    assert np.array_equal(np.asarray(to_rgb8(image)), np.asarray(image.convert("RGB")))
