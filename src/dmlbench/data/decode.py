"""Decoding one image file as every part of dmlbench sees it (prepare, `dmlbench query`, its picture): 8-bit RGB
scaled from its bit depth, checked for a usable shape, cropped to a box, then turned upright by its EXIF tag.

Boxes are in the stored pixels: the annotation files of CUB and CARS were read that way by the seeds (PIL crops the
stored pixels and ignores the tag), so the box is cut first and the cut is turned upright, which gives the same
pixels as turning the image upright and mapping the box with it.
"""

import os
from pathlib import Path

from PIL import Image

from dmlbench.data.bit_depth import to_rgb8
from dmlbench.errors import DmlbenchError

Box = tuple[int, int, int, int]
# Below 16 px a side the transforms blow an image up more than 3x (the demo's 48-64 px) or 14x (the seeds' 224 px)
# into a blur; 16 is also the smallest image the synthetic generator writes. A 1x1 image is one colour.
MIN_SIDE = 16
# Beyond 10:1 the methods' square crops keep under a tenth of the image, and CGD's pad to a square leaves a strip
# under a tenth as high as the square: a 4000x10 image is a line of noise.
MAX_ASPECT = 10.0
ORIENTATION = 0x0112  # the EXIF Orientation tag
# Orientation value -> the transpose that turns the stored pixels upright (EXIF 2.3, tag 274).
UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
           5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
           8: Image.Transpose.ROTATE_90}


class UnreadableImage(DmlbenchError):
    """An image file that cannot be used: missing, a dangling link, a folder, undecodable, too large, or of an
    unusable shape. ``reason`` names the file and the problem (it goes to skipped.csv); ``fix`` is set when the
    problem has its own fix (else the caller's: restore, replace, pass another file); ``cause`` is a short label."""

    def __init__(self, reason: str, fix: str | None = None, cause: str = "") -> None:
        super().__init__(reason)
        self.reason, self.fix, self.cause = reason, fix, cause


def one_line(exc: BaseException) -> str:
    """An exception as ``Type: message`` on one line (decoder messages may hold newlines)."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def absent_reason(source: Path) -> str | None:
    """Why ``source`` is not a file to decode, found without reading it (None when it is a regular file)."""
    if source.is_file():
        return None
    if source.is_symlink() and not source.exists():  # exists() follows the link: it dangles or loops
        return f"broken symbolic link {source} (points to {os.readlink(source)!r})"
    if source.is_dir():
        return f"{source} is a directory, not an image file"
    if source.exists():  # a FIFO or device (or a link to one): opening a FIFO would block forever
        return f"not a regular file: {source}"
    return f"missing image {source}"


def shape_problem(size: tuple[int, int]) -> str | None:
    """Why a width x height image is unusable (below MIN_SIDE, beyond MAX_ASPECT), or None."""
    width, height = size
    if min(size) < MIN_SIDE:
        return f"is {width}x{height} pixels, below the minimum side of {MIN_SIDE}"
    if max(size) / min(size) > MAX_ASPECT:
        return f"is {width}x{height} pixels, an aspect ratio beyond {MAX_ASPECT:g}:1"
    return None


def clamped(box: Box, size: tuple[int, int], source: Path) -> Box:
    """The box inside the image: rounded annotations may overshoot a border by a pixel."""
    x1, y1, x2, y2 = max(0, box[0]), max(0, box[1]), min(size[0], box[2]), min(size[1], box[3])
    if x2 <= x1 or y2 <= y1:
        raise DmlbenchError(f"box {box} of {source} lies outside the {size[0]}x{size[1]} image (boxes are in "
                            f"its stored pixels, before any EXIF rotation): fix its bounding-box annotation or "
                            f"prepare uncropped")
    return x1, y1, x2, y2


def orientation(image: Image.Image) -> int:
    """The EXIF orientation (1-8) of an opened image; 1 when it has none, or an unreadable or invalid one.

    A damaged EXIF block does not stop a viewer from showing the stored pixels, so it does not stop us either.
    """
    try:
        value = image.getexif().get(ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - EXIF parsing raises many types on hostile bytes
        return 1
    return value if value in UPRIGHT else 1


def _opened(source: Path) -> tuple[Image.Image, int]:
    """The fully decoded 8-bit RGB pixels of ``source`` and its orientation; UnreadableImage for what stops it."""
    absent = absent_reason(source)
    if absent:
        raise UnreadableImage(absent, cause="directory" if source.is_dir() else "missing file")
    try:
        with Image.open(source) as image:
            image.load()  # the full decode, so truncated files fail here
            return to_rgb8(image), orientation(image)
    except Image.DecompressionBombError as exc:  # above 2 x Image.MAX_IMAGE_PIXELS; not an OSError
        raise UnreadableImage(f"image {source} is too large to decode safely ({one_line(exc)})",
                              "downscale or remove it", type(exc).__name__) from None
    except FileNotFoundError:  # removed since the check above
        raise UnreadableImage(f"missing image {source}", cause="missing file") from None
    except Exception as exc:  # noqa: BLE001 - hostile bytes make Pillow's decoders raise many types
        raise UnreadableImage(f"corrupt or unreadable image {source} ({one_line(exc)})",
                              cause=type(exc).__name__) from None


def decode_image(source: Path, box: Box | None = None, check_shape: bool = True) -> Image.Image:
    """``source`` as upright 8-bit RGB, cut to ``box`` (stored pixels) when given.

    ``check_shape`` refuses images below MIN_SIDE or beyond MAX_ASPECT (the full stored image is checked, not the
    box): a user's or a dataset's file; the pictures' thumbnails of prepared images skip it.
    """
    image, turn = _opened(Path(source))
    problem = shape_problem(image.size) if check_shape else None
    if problem:
        raise UnreadableImage(f"image {source} {problem}",
                              f"replace it by an image at least {MIN_SIDE} px a side and at most "
                              f"{MAX_ASPECT:g}:1, or remove it", "shape")
    if box is not None:
        image = image.crop(clamped(box, image.size, Path(source)))
    return image.transpose(UPRIGHT[turn]) if turn in UPRIGHT else image
