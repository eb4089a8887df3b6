"""A generated fine-grained dataset (shape x colour x pattern) written in CUB-200-2011's raw layout."""

import colorsys
import itertools
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from dmlbench import atomic
from dmlbench.errors import DmlbenchError

SHAPES = ("ellipse", "square", "triangle", "diamond", "cross")
HUES = (0.0, 0.2, 0.4, 0.6, 0.8)  # five hues 72 degrees apart
PATTERNS = ("solid", "stripes", "dots", "checker")
COMBINATIONS = list(itertools.product(range(len(SHAPES)), range(len(HUES)), range(len(PATTERNS))))


def class_factors(num_classes: int, seed: int) -> list[tuple[int, int, int]]:
    """A seeded choice of (shape, hue, pattern) per class; both halves cover every factor when they can."""
    if num_classes > len(COMBINATIONS):
        raise DmlbenchError(f"synthetic.num_classes = {num_classes} exceeds the {len(COMBINATIONS)} "
                            f"shape x colour x pattern combinations: lower it")
    rng = np.random.default_rng([seed, 0])
    half = num_classes // 2
    for _ in range(1000):
        chosen = [COMBINATIONS[i] for i in rng.permutation(len(COMBINATIONS))[:num_classes]]
        if half < len(SHAPES) or all(_covers(part) for part in (chosen[:half], chosen[half:])):
            return chosen
    return chosen


def _covers(classes: list[tuple[int, int, int]]) -> bool:
    sizes = (len(SHAPES), len(HUES), len(PATTERNS))
    return all(len({c[f] for c in classes}) == sizes[f] for f in range(3))


def _colour(hue: float, rng: np.random.Generator) -> tuple[int, int, int]:
    """The class hue with a small jitter in hue, saturation and value."""
    h = (hue + rng.uniform(-0.03, 0.03)) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, rng.uniform(0.65, 0.95), rng.uniform(0.7, 0.95))
    return int(r * 255), int(g * 255), int(b * 255)


def _shape_mask(shape: str, size: int, box: tuple[int, int, int, int]) -> Image.Image:
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    x1, y1, x2, y2 = box
    cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    if shape == "ellipse":
        draw.ellipse(box, fill=255)
    elif shape == "square":
        draw.rectangle(box, fill=255)
    elif shape == "triangle":
        draw.polygon([(cx, y1), (x2, y2), (x1, y2)], fill=255)
    elif shape == "diamond":
        draw.polygon([(cx, y1), (x2, cy), (cx, y2), (x1, cy)], fill=255)
    else:  # cross
        draw.rectangle((x1, cy - h / 6, x2, cy + h / 6), fill=255)
        draw.rectangle((cx - w / 6, y1, cx + w / 6, y2), fill=255)
    return mask


def _texture(pattern: str, size: int, colour, period: int) -> Image.Image:
    yy, xx = np.mgrid[0:size, 0:size]
    if pattern == "solid":
        dark = np.zeros((size, size), bool)
    elif pattern == "stripes":
        dark = (yy // period) % 2 == 1
    elif pattern == "dots":
        dark = ((yy % period - period / 2) ** 2 + (xx % period - period / 2) ** 2) < (period / 3.2) ** 2
    else:  # checker
        dark = ((yy // period) + (xx // period)) % 2 == 1
    pixels = np.where(dark[..., None], np.array(colour) * 0.35, np.array(colour))
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def _background(size: int, rng: np.random.Generator) -> Image.Image:
    """Low-contrast noise plus a few random distractor blobs and lines (the clutter cropping removes)."""
    base = rng.integers(90, 170, size=3)
    noise = rng.normal(0, 18, size=(size, size, 3))
    image = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(3, 7)):
        x, y = rng.integers(0, size, 2)
        r = int(rng.integers(size // 16, size // 6))
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
        else:
            draw.line((x, y, *rng.integers(0, size, 2)), fill=fill, width=max(1, size // 40))
    return image


def render_image(factors: tuple[int, int, int], size: int, rng: np.random.Generator):
    """One image of a class and its object's true bounding box (x1, y1, x2, y2)."""
    shape, hue, pattern = factors
    image = _background(size, rng)
    side = int(size * rng.uniform(0.35, 0.7))
    x1, y1 = (int(v) for v in rng.integers(0, size - side + 1, 2))
    mask = _shape_mask(SHAPES[shape], size, (x1, y1, x1 + side - 1, y1 + side - 1))
    texture = _texture(PATTERNS[pattern], size, _colour(HUES[hue], rng), period=max(2, side // 6))
    image.paste(texture, (0, 0), mask)
    return image, mask.getbbox()


def write_synthetic(root: Path, num_classes: int, images_per_class: int, image_size: int, seed: int) -> None:
    """Write the dataset (images/ + the five CUB annotation files); same arguments, same bytes."""
    root = Path(root)
    if root.exists():
        shutil.rmtree(root)
    lines = {name: [] for name in ("images", "image_class_labels", "bounding_boxes", "classes",
                                   "train_test_split")}
    image_id = 0
    for c, factors in enumerate(class_factors(num_classes, seed), start=1):
        folder = f"{c:03d}.class_{c:03d}"
        lines["classes"].append(f"{c} {folder}")
        for i in range(images_per_class):
            image_id += 1
            image, (x1, y1, x2, y2) = render_image(factors, image_size, np.random.default_rng([seed, c, i]))
            relative = f"{folder}/class_{c:03d}_{i + 1:04d}.jpg"
            with atomic.atomic_path(root / "images" / relative) as tmp:
                image.save(tmp, format="JPEG", quality=90)
            lines["images"].append(f"{image_id} {relative}")
            lines["image_class_labels"].append(f"{image_id} {c}")
            lines["bounding_boxes"].append(f"{image_id} {x1}.0 {y1}.0 {x2 - x1}.0 {y2 - y1}.0")
            lines["train_test_split"].append(f"{image_id} {int(i % 2 == 0)}")
    for name, content in lines.items():
        atomic.write_text(root / f"{name}.txt", "\n".join(content) + "\n")
