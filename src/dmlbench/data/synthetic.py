"""A generated fine-grained dataset (shape x colour x pattern) written in CUB-200-2011's raw layout."""

import colorsys
import itertools
import os
import shutil
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from dmlbench import atomic
from dmlbench.errors import DmlbenchError

SHAPES = ("ellipse", "square", "triangle", "cross")
HUES = (0.0, 0.25, 0.5, 0.75)  # four hues 90 degrees apart: jitter never crosses into a neighbour
PATTERNS = ("solid", "stripes", "dots", "checker")
FACTORS = (len(SHAPES), len(HUES), len(PATTERNS))
COMBINATIONS = list(itertools.product(*(range(n) for n in FACTORS)))
JPEG_QUALITY = 90

Factors = tuple[int, int, int]


def class_factors(num_classes: int, seed: int) -> list[Factors]:
    """(shape, hue, pattern) of classes 1..N: a seeded shuffle in which each half covers every factor value.

    Full coverage needs each half to hold at least max(FACTORS) classes; smaller sets cover what they can.
    """
    if not 2 <= num_classes <= len(COMBINATIONS):
        raise DmlbenchError(f"synthetic num_classes = {num_classes} must be in 2..{len(COMBINATIONS)} (the "
                            f"{' x '.join(map(str, FACTORS))} shape x colour x pattern combinations): change it")
    rng = np.random.default_rng([seed, 0])
    perms = [rng.permutation(n) for n in FACTORS]
    width = max(FACTORS)
    # A "diagonal" per half covers every value; half h shifts the other factors by h, so the halves' diagonals
    # never share a combination (same shape -> different hue).
    diagonals = [[tuple(int(p[(k + h * f) % len(p)]) for f, p in enumerate(perms)) for k in range(width)]
                 for h in (0, 1)]
    sizes = (num_classes // 2, num_classes - num_classes // 2)  # the reader's split: first half train
    halves = [diagonal[:size] for diagonal, size in zip(diagonals, sizes)]
    used = set(halves[0] + halves[1])
    spare = [COMBINATIONS[i] for i in rng.permutation(len(COMBINATIONS)) if COMBINATIONS[i] not in used]
    for half, size in zip(halves, sizes):
        while len(half) < size:
            half.append(spare.pop())
    # Shuffle within each half so class ids do not reveal which classes form the diagonal.
    return [half[i] for half in halves for i in rng.permutation(len(half))]


def _colour(hue: float, rng: np.random.Generator) -> tuple[int, int, int]:
    """The class hue with a small jitter in hue, saturation and value."""
    h = (hue + rng.uniform(-0.04, 0.04)) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, rng.uniform(0.65, 0.95), rng.uniform(0.7, 0.95))
    return int(r * 255), int(g * 255), int(b * 255)


def _shape_mask(shape: str, side: int) -> Image.Image:
    """A side x side mask of the shape touching all four borders."""
    mask = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(mask)
    end, mid = side - 1, (side - 1) / 2
    if shape == "ellipse":
        draw.ellipse((0, 0, end, end), fill=255)
    elif shape == "square":
        draw.rectangle((0, 0, end, end), fill=255)
    elif shape == "triangle":
        draw.polygon([(mid, 0), (end, end), (0, end)], fill=255)
    else:  # cross
        draw.rectangle((0, mid - side / 6, end, mid + side / 6), fill=255)
        draw.rectangle((mid - side / 6, 0, mid + side / 6, end), fill=255)
    return mask


@lru_cache(maxsize=None)
def _dark_cells(pattern: str, side: int) -> np.ndarray:
    """Which pixels of a side x side patch take the dark tone (cached: few distinct sizes per dataset)."""
    period = max(2, side // 6)  # relative to the object, so the pattern is scale-invariant
    yy, xx = np.mgrid[0:side, 0:side]
    if pattern == "solid":
        return np.zeros((side, side), bool)
    if pattern == "stripes":
        return (yy // period) % 2 == 1
    if pattern == "dots":
        return ((yy % period - period / 2) ** 2 + (xx % period - period / 2) ** 2) < (period / 3.2) ** 2
    return ((yy // period) + (xx // period)) % 2 == 1  # checker


def _texture(pattern: str, side: int, colour: tuple[int, int, int]) -> Image.Image:
    tones = np.array([colour, [round(c * 0.35) for c in colour]], dtype=np.uint8)
    return Image.fromarray(tones[_dark_cells(pattern, side).astype(np.uint8)], "RGB")


def _background(size: int, rng: np.random.Generator) -> Image.Image:
    """Low-contrast noise plus a few random distractor blobs and lines (the clutter cropping removes)."""
    base = rng.integers(90, 170, size=3, dtype=np.int16)
    noise = rng.integers(-30, 31, size=(size, size, 3), dtype=np.int16)  # integers: far cheaper than normal()
    image = Image.fromarray((base + noise).astype(np.uint8), "RGB")  # stays within 60..200, no clipping
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 7))):
        x, y, x2, y2 = (int(v) for v in rng.integers(0, size, 4))
        r = int(rng.integers(size // 16, size // 6 + 1))
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
        else:
            draw.line((x, y, x2, y2), fill=fill, width=max(1, size // 40))
    return image


def render_image(factors: Factors, size: int, rng: np.random.Generator):
    """One image of a class and its object's true bounding box (x1, y1, x2, y2), x2/y2 exclusive."""
    shape, hue, pattern = factors
    image = _background(size, rng)
    side = max(4, int(size * rng.uniform(0.35, 0.7)))
    x1, y1 = (int(v) for v in rng.integers(0, size - side + 1, 2))
    mask = _shape_mask(SHAPES[shape], side)
    image.paste(_texture(PATTERNS[pattern], side, _colour(HUES[hue], rng)), (x1, y1), mask)
    bx1, by1, bx2, by2 = mask.getbbox()
    return image, (x1 + bx1, y1 + by1, x1 + bx2, y1 + by2)


def _write_tree(root: Path, num_classes: int, images_per_class: int, image_size: int, seed: int) -> None:
    lines: dict[str, list[str]] = {name: [] for name in (
        "images", "image_class_labels", "bounding_boxes", "classes", "train_test_split")}
    image_id = 0
    for c, factors in enumerate(class_factors(num_classes, seed), start=1):
        folder = f"{c:03d}.class_{c:03d}"
        (root / "images" / folder).mkdir(parents=True)
        lines["classes"].append(f"{c} {folder}")
        for i in range(images_per_class):
            image_id += 1
            image, (x1, y1, x2, y2) = render_image(factors, image_size, np.random.default_rng([seed, c, i]))
            relative = f"{folder}/class_{c:03d}_{i + 1:04d}.jpg"
            image.save(root / "images" / relative, format="JPEG", quality=JPEG_QUALITY)
            lines["images"].append(f"{image_id} {relative}")
            lines["image_class_labels"].append(f"{image_id} {c}")
            lines["bounding_boxes"].append(f"{image_id} {x1:.1f} {y1:.1f} {x2 - x1:.1f} {y2 - y1:.1f}")
            lines["train_test_split"].append(f"{image_id} {int(i % 2 == 0)}")
    for name, content in lines.items():
        (root / f"{name}.txt").write_text("\n".join(content) + "\n", encoding="utf-8", newline="")


def write_synthetic(root: Path, num_classes: int, images_per_class: int, image_size: int, seed: int) -> None:
    """Write the dataset (images/ + the five CUB annotation files) to ``root``; same arguments, same bytes."""
    if images_per_class < 1 or image_size < 16:
        raise DmlbenchError(f"synthetic images_per_class = {images_per_class} and image_size = {image_size} "
                            f"must be >= 1 and >= 16: change them")
    class_factors(num_classes, seed)  # validate before touching the disk
    root = Path(root)
    # Build in a sibling folder, then swap it in: an interrupted run never leaves a half-written dataset.
    staging = root.parent / f".{root.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        _write_tree(staging, num_classes, images_per_class, image_size, seed)
        atomic.replace_dir(staging, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
