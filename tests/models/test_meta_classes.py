import numpy as np
import pytest

from dmlbench.errors import DmlbenchError
from dmlbench.models.meta_classes import assign_meta_classes, balanced_groups, codes_unique


@pytest.mark.parametrize(("classes", "meta"), [(98, 12), (100, 12), (3997, 192), (11318, 512), (12, 12), (13, 2)])
def test_groups_are_balanced(classes, meta):
    labels = balanced_groups(classes, meta, np.random.default_rng(3))
    counts = np.bincount(labels, minlength=meta)
    assert len(labels) == classes and counts.sum() == classes
    assert counts.max() - counts.min() <= 1 and counts.min() >= classes // meta


def test_assignment_shape_range_and_unique_codes():
    assignment = assign_meta_classes(98, 12, 48, seed=0)
    assert assignment.shape == (48, 98) and assignment.dtype == np.int64
    assert assignment.min() == 0 and assignment.max() == 11
    codes = {tuple(assignment[:, c]) for c in range(98)}
    assert len(codes) == 98
    for row in assignment:
        counts = np.bincount(row, minlength=12)
        assert counts.max() - counts.min() <= 1


def test_same_seed_same_assignment_other_seed_other():
    first, again = assign_meta_classes(50, 6, 8, seed=7), assign_meta_classes(50, 6, 8, seed=7)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, assign_meta_classes(50, 6, 8, seed=8))


def test_learners_differ():
    assignment = assign_meta_classes(98, 12, 48, seed=0)
    assert len({tuple(row) for row in assignment}) == 48


def test_codes_unique_detects_a_collision():
    assert codes_unique(np.array([[0, 1, 1], [1, 0, 1]]))
    assert not codes_unique(np.array([[0, 1, 1], [1, 0, 0]]))


def test_collision_error_names_the_sizes():
    # 1 learner x 2 meta classes cannot give 5 classes unique codes.
    with pytest.raises(DmlbenchError, match=r"1 learner\(s\) x 2 meta classes .* 5 training classes .* 10 draws"):
        assign_meta_classes(5, 2, 1, seed=0)


@pytest.mark.parametrize("meta", [1, 6])
def test_meta_classes_out_of_range(meta):
    with pytest.raises(DmlbenchError, match=f"lrec.meta_classes must be in \\[2, 5\\].*got {meta}"):
        assign_meta_classes(5, meta, 4, seed=0)
