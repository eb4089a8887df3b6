"""16- and 32-bit greyscale images to 8-bit RGB by scaling their value range, never by clipping.

Pillow's ``convert("RGB")`` clips an ``I;16``/``I``/``F`` image at 255, so a full-range 16-bit gradient came out
99.6 % white. Here each value is mapped linearly from its range onto 0..255 and rounded to the nearest level:

- ``I;16`` (and ``I;16L``/``I;16B``/``I;16N``): 0..65535, the mode's range.
- ``I`` (32-bit signed, what Pillow gives a 16-bit PGM or a 32-bit TIFF): the first standard range that holds
  every value, 0..65535 (16-bit data in a 32-bit mode), -32768..32767, 0..2^31-1, then -2^31..2^31-1.
- ``F`` (32-bit float): the first of 0..1 (the float convention of TIFF and scientific tools), 0..255 (Pillow's
  own, what ``convert("F")`` gives) and 0..65535 that holds every value; NaN, infinities or other values have no
  display range and are refused.
Every other mode (8-bit ones, and 16-bit RGB, which Pillow already reduces to its high byte) goes through
``convert("RGB")`` as before.
"""

import numpy as np
from PIL import Image

SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N"}
INT_RANGES = ((0, 65535), (-32768, 32767), (0, 2 ** 31 - 1), (-2 ** 31, 2 ** 31 - 1))
FLOAT_RANGES = ((0.0, 1.0), (0.0, 255.0), (0.0, 65535.0))


class NoDisplayRange(ValueError):
    """A float image whose values fit no standard range (or are not finite): nothing says what is white."""


def value_range(mode: str, values: np.ndarray) -> tuple[float, float]:
    """(black, white): the values that become 0 and 255 for a greyscale image of ``mode``."""
    if mode in SIXTEEN_BIT:
        return 0, 65535
    ranges = INT_RANGES if mode == "I" else FLOAT_RANGES
    if mode == "F" and not np.isfinite(values).all():
        raise NoDisplayRange("float image holds NaN or infinite values")
    low, high = (values.min(), values.max()) if values.size else (0, 0)
    for black, white in ranges:
        if black <= low and high <= white:
            return black, white
    raise NoDisplayRange(f"float image values {low:g}..{high:g} fit none of 0..1, 0..255, 0..65535")


def to_rgb8(image: Image.Image) -> Image.Image:
    """``image`` as 8-bit RGB; wide greyscale modes scaled from their range (module docstring)."""
    if image.mode not in SIXTEEN_BIT | {"I", "F"}:
        return image.convert("RGB")
    values = np.asarray(image, dtype=np.float64)
    black, white = value_range(image.mode, values)
    levels = np.rint((values - black) * (255.0 / (white - black)))
    return Image.fromarray(levels.astype(np.uint8), "L").convert("RGB")
