"""The synthetic dataset: deterministic bytes, CUB layout, factor coverage, true boxes."""

from collections import Counter

import pytest
from PIL import Image

from dmlbench.data.cub import read_cub
from dmlbench.data.synthetic import COMBINATIONS, FACTORS, class_factors, write_synthetic
from dmlbench.errors import DmlbenchError

SIZE = 40


def tree_bytes(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic") / "data"
    write_synthetic(root, num_classes=8, images_per_class=4, image_size=SIZE, seed=0)
    return root


def test_same_seed_same_bytes_other_seed_differs(synthetic, tmp_path):
    write_synthetic(tmp_path / "again", 8, 4, SIZE, seed=0)
    write_synthetic(tmp_path / "other", 8, 4, SIZE, seed=1)
    reference = tree_bytes(synthetic)
    assert tree_bytes(tmp_path / "again") == reference
    other = tree_bytes(tmp_path / "other")
    assert other.keys() == reference.keys() and other != reference


def test_rewrite_replaces_an_existing_folder(synthetic, tmp_path):
    root = tmp_path / "data"
    write_synthetic(root, 10, 5, 48, seed=3)
    (root / "stray.txt").write_text("left over")
    write_synthetic(root, 8, 4, SIZE, seed=0)
    assert tree_bytes(root) == tree_bytes(synthetic)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no staging folders left


def test_read_cub_reads_it(synthetic):
    records = read_cub(synthetic, expected=None)
    assert Counter(r.split for r in records) == {"train": 16, "test": 16}
    assert {r.label for r in records if r.split == "train"} == {1, 2, 3, 4}
    assert records[0].path == "images/001.class_001/class_001_0001.jpg"
    assert (synthetic / "classes.txt").read_text().splitlines()[0] == "1 001.class_001"
    assert len((synthetic / "train_test_split.txt").read_text().splitlines()) == 32


def test_boxes_are_true_and_inside_the_image(synthetic):
    for r in read_cub(synthetic, expected=None):
        x1, y1, x2, y2 = r.box
        assert 0 <= x1 < x2 <= SIZE and 0 <= y1 < y2 <= SIZE
        assert 0.3 * SIZE <= max(x2 - x1, y2 - y1) <= 0.7 * SIZE + 1  # the object's drawn scale
        with Image.open(synthetic / r.path) as image:
            assert image.size == (SIZE, SIZE) and image.mode == "RGB"


@pytest.mark.parametrize("num_classes", [8, 9, 20, 64])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_both_halves_cover_every_factor(num_classes, seed):
    factors = class_factors(num_classes, seed)
    assert len(set(factors)) == num_classes  # distinct combinations: test classes are unseen ones
    half = num_classes // 2
    for part in (factors[:half], factors[half:]):
        assert [len({c[f] for c in part}) for f in range(3)] == list(FACTORS)


def test_mapping_is_a_seeded_shuffle():
    assert class_factors(16, 0) == class_factors(16, 0) != class_factors(16, 1)


def test_too_many_classes_is_a_clear_error(tmp_path):
    with pytest.raises(DmlbenchError, match=f"num_classes = {len(COMBINATIONS) + 1} must be in 2..64"):
        write_synthetic(tmp_path / "data", len(COMBINATIONS) + 1, 2, SIZE, 0)
    assert not (tmp_path / "data").exists()
