"""The CGD-TF seed's training augmentation, redone with torchvision ops on PIL images.

The seed (imgaug 0.4.0) applied, per image, SomeOf((0, 2)) of five augmenters in random order, then Fliplr(0.5):
Grayscale(alpha (0.2, 1)); Affine scale x and y each in (0.8, 1.2); Affine translate_percent x and y each in
(-0.1, 0.1); Affine rotate (-15, 15) degrees; Affine shear (-10, 10) degrees, which imgaug 0.4.0 applies to both
axes with the one sampled angle. Every Affine samples bilinearly about the image centre and fills with black.

Every draw comes from torch's global generator, which ``ManifestDataset`` seeds per sample, so an image's
augmentation is a function of its seed (as for torchvision's own random transforms).
"""

import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

GRAY_ALPHA = (0.2, 1.0)  # weight of the greyscale image over the original
SCALE = (0.8, 1.2)  # per axis, drawn independently
TRANSLATE = (-0.1, 0.1)  # fraction of the side, per axis, drawn independently
ROTATE = (-15.0, 15.0)  # degrees
SHEAR = (-10.0, 10.0)  # degrees, one angle for both axes
MAX_OPS = 2  # SomeOf((0, 2)): 0, 1 or 2 ops, equally likely
FLIP_PROBABILITY = 0.5
BILINEAR = InterpolationMode.BILINEAR  # imgaug's order=1


def uniform(bounds: tuple[float, float]) -> float:
    """One draw from U(low, high)."""
    low, high = bounds
    return low + (high - low) * torch.rand(()).item()


def grayscale(image: Image.Image, alpha: float) -> Image.Image:
    """alpha x greyscale + (1 - alpha) x image (PIL's luma weights; adjust_saturation blends exactly so)."""
    return F.adjust_saturation(image, 1.0 - alpha)


def scale(image: Image.Image, sx: float, sy: float) -> Image.Image:
    """Scale each axis about the centre, same size out: resize, then centre-crop, or pad with black."""
    width, height = image.size
    resized = F.resize(image, [max(1, round(height * sy)), max(1, round(width * sx))], BILINEAR)
    return F.center_crop(resized, [height, width])


def translate(image: Image.Image, fx: float, fy: float) -> Image.Image:
    """Shift by (fx x width, fy x height) pixels, sub-pixel, black where nothing comes in."""
    width, height = image.size
    return F.affine(image, angle=0.0, translate=[fx * width, fy * height], scale=1.0, shear=[0.0, 0.0],
                    interpolation=BILINEAR, fill=0)


def rotate(image: Image.Image, degrees: float) -> Image.Image:
    """Rotate about the centre; a positive angle turns clockwise on screen, as imgaug's."""
    return F.affine(image, angle=degrees, translate=[0.0, 0.0], scale=1.0, shear=[0.0, 0.0],
                    interpolation=BILINEAR, fill=0)


def shear(image: Image.Image, degrees: float) -> Image.Image:
    """imgaug's shear by one angle s on both axes, about the centre: (x, y) -> ((cos s - sin^2 s) x - sin s y,
    sin s cos s x + cos s y), y pointing down. torchvision's shear (s, -s) is that map to first order in s; the
    second-order terms move a point by at most 4.6% of its distance from the centre at 10 degrees."""
    return F.affine(image, angle=0.0, translate=[0.0, 0.0], scale=1.0, shear=[degrees, -degrees],
                    interpolation=BILINEAR, fill=0)


# name -> (apply, parameter ranges drawn in order); the order of this table is fixed (it keys the draws).
OPS = {"grayscale": (grayscale, (GRAY_ALPHA,)), "scale": (scale, (SCALE, SCALE)),
       "translate": (translate, (TRANSLATE, TRANSLATE)), "rotate": (rotate, (ROTATE,)), "shear": (shear, (SHEAR,))}


def draw_plan() -> tuple[list[tuple[str, tuple[float, ...]]], bool]:
    """One image's augmentation: 0..2 distinct ops in random order, each with its drawn parameters, and the flip."""
    names = list(OPS)
    count = int(torch.randint(0, MAX_OPS + 1, ()))
    chosen = [names[i] for i in torch.randperm(len(names))[:count].tolist()]
    ops = [(name, tuple(uniform(bounds) for bounds in OPS[name][1])) for name in chosen]
    return ops, bool(torch.rand(()) < FLIP_PROBABILITY)


class SeedAugmentation:
    """The seed's SomeOf((0, 2)) of grayscale, scale, translate, rotate, shear, then a horizontal flip (p 0.5).

    A plain class (not a lambda), so DataLoader workers can pickle it.
    """

    def __call__(self, image: Image.Image) -> Image.Image:
        ops, flip = draw_plan()
        for name, params in ops:
            image = OPS[name][0](image, *params)
        return F.hflip(image) if flip else image

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
