"""The CGD-TF seed's augmentation: 0-2 distinct ops of five in random order with the seed's ranges, then a flip;
each op against the seed's (imgaug's) geometry; deterministic per sample seed through the dataset."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from dmlbench.data import cgdtf_augment as aug
from dmlbench.data.image_dataset import ManifestDataset

RANGES = {"grayscale": [(0.2, 1.0)], "scale": [(0.8, 1.2)] * 2, "translate": [(-0.1, 0.1)] * 2,
          "rotate": [(-15.0, 15.0)], "shear": [(-10.0, 10.0)]}  # the seed's imgaug parameters


def plans(seeds):
    for seed in seeds:
        torch.manual_seed(seed)
        yield aug.draw_plan()


def test_zero_to_two_distinct_ops_each_possible_in_either_position_with_the_seeds_ranges():
    drawn = list(plans(range(400)))
    counts = [len(ops) for ops, _ in drawn]
    assert set(counts) == {0, 1, 2}
    # SomeOf((0, 2)): each count equally likely; 400 draws give ~133 each (s.d. 9.4): 90..180 is > 4.5 s.d.
    assert all(90 < counts.count(n) < 180 for n in (0, 1, 2))
    firsts = {ops[0][0] for ops, _ in drawn if ops}
    seconds = {ops[1][0] for ops, _ in drawn if len(ops) == 2}
    assert firsts == seconds == set(RANGES)  # every op occurs, first or second (random order)
    for ops, _ in drawn:
        assert len({name for name, _ in ops}) == len(ops)  # without repeat
        for name, params in ops:
            assert len(params) == len(RANGES[name])
            assert all(low <= value <= high for value, (low, high) in zip(params, RANGES[name]))
    assert {flip for _, flip in drawn} == {True, False}


def test_the_plan_is_a_function_of_the_seed():
    assert list(plans(range(30))) == list(plans(range(30)))
    assert len({repr(plan) for plan in plans(range(30))}) > 20  # 30 seeds: (almost) all plans differ


def test_the_augmentation_applies_the_drawn_plan_then_the_flip():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8))
    for seed in range(12):
        torch.manual_seed(seed)
        out = aug.SeedAugmentation()(image)
        torch.manual_seed(seed)
        ops, flip = aug.draw_plan()
        expected = image
        for name, params in ops:
            expected = aug.OPS[name][0](expected, *params)
        if flip:
            expected = expected.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        assert out.size == image.size and np.array_equal(np.asarray(out), np.asarray(expected))


def test_through_the_dataset_each_sample_seed_gives_one_augmentation(tmp_path):
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    dataset = ManifestDataset(tmp_path, [("a.png", 7)], aug.SeedAugmentation(), [7])
    outputs = [np.asarray(dataset[(0, seed)][0]) for seed in (5, 5, 6, 7, 8, 9)]
    assert np.array_equal(outputs[0], outputs[1])
    assert sum(not np.array_equal(outputs[0], other) for other in outputs[2:]) >= 3  # most seeds differ


def dot_image(dx: float, dy: float, side: int = 101) -> Image.Image:
    """A black square with a 3 x 3 white dot at (dx, dy) from the centre pixel."""
    array = np.zeros((side, side, 3), np.uint8)
    x, y = side // 2 + round(dx), side // 2 + round(dy)
    array[y - 1:y + 2, x - 1:x + 2] = 255
    return Image.fromarray(array)


def dot_offset(image: Image.Image) -> np.ndarray:
    """The intensity centroid's offset from the centre pixel."""
    a = np.asarray(image, dtype=np.float64)[..., 0]
    ys, xs = np.mgrid[:a.shape[0], :a.shape[1]]
    return np.array([(xs * a).sum(), (ys * a).sum()]) / a.sum() - a.shape[0] // 2


def imgaug_matrix(name: str, *params: float) -> np.ndarray:
    """The 2 x 2 part of imgaug 0.4.0's forward map about the centre (x right, y down), from its to_matrix:
    skimage's AffineTransform(scale, rotation, shear) = [[sx cos r, -sy sin(r + sh)], [sx sin r, sy cos(r + sh)]],
    and a y-shear made of rotate(-90) + shear + rotate(90)."""
    if name == "scale":
        return np.diag(params)
    (degrees,) = params
    r = math.radians(degrees)
    if name == "rotate":
        return np.array([[math.cos(r), -math.sin(r)], [math.sin(r), math.cos(r)]])
    x_shear = np.array([[1.0, -math.sin(r)], [0.0, math.cos(r)]])
    quarter = np.array([[0.0, -1.0], [1.0, 0.0]])  # rotation by +90 degrees
    return x_shear @ quarter @ x_shear @ quarter.T  # imgaug: x-shear after the y-shear, one angle for both


@pytest.mark.parametrize(("name", "params", "tolerance"), [
    ("scale", (1.2, 0.8), 0.6),  # the resize rounds each side to whole pixels (<= 0.5 px at the dot)
    ("scale", (0.8, 1.15), 0.6),
    ("shear", (10.0,), 0.05 * 28.3 + 0.2),  # second-order terms: <= 4.6% of the offset (module docstring)
    ("shear", (-7.0,), 0.05 * 28.3 + 0.2),
])
def test_scale_and_shear_move_a_point_as_imgaug(name, params, tolerance):
    for offset in [(20.0, 0.0), (0.0, 20.0), (20.0, 20.0), (-20.0, 10.0)]:
        moved = dot_offset(aug.OPS[name][0](dot_image(*offset), *params))
        assert np.abs(moved - imgaug_matrix(name, *params) @ np.array(offset)).max() < tolerance, (offset, moved)


def test_rotation_turns_about_the_centre_by_the_drawn_angle_as_imgaug():
    for offset in [(20.0, 0.0), (0.0, 20.0), (-15.0, 15.0)]:
        moved = dot_offset(aug.rotate(dot_image(*offset), 15.0))
        expected = imgaug_matrix("rotate", 15.0) @ np.array(offset)  # clockwise on screen (y down), as imgaug
        assert np.abs(moved - expected).max() < 0.3  # bilinear sampling of the 3 x 3 dot


def test_translation_moves_by_the_fraction_of_each_side():
    moved = dot_offset(aug.translate(dot_image(0.0, 0.0), 0.1, -0.05))
    assert np.abs(moved - np.array([10.1, -5.05])).max() < 0.1  # bilinear sub-pixel shift of the dot


def test_scale_pads_with_black_when_it_shrinks():
    out = np.asarray(aug.scale(Image.new("RGB", (50, 40), (255, 255, 255)), 0.8, 1.0))
    assert out.shape == (40, 50, 3) and out[:, :4].max() == 0 and out[:, -4:].max() == 0 and out[:, 10:40].min() == 255


def test_grayscale_blends_the_luma_by_alpha():
    image = Image.new("RGB", (4, 4), (200, 100, 50))
    luma = (200 * 299 + 100 * 587 + 50 * 114) / 1000  # PIL's ITU-R 601-2 weights: 124.2
    assert np.asarray(aug.grayscale(image, 1.0))[0, 0].tolist() == [round(luma)] * 3
    half = np.asarray(aug.grayscale(image, 0.4))[0, 0].astype(float)
    expected = 0.4 * round(luma) + 0.6 * np.array([200, 100, 50])  # alpha x grey + (1 - alpha) x image
    assert np.abs(half - expected).max() <= 1.0  # PIL rounds the blend to whole levels
