import numpy as np
import pytest

from dmlbench.errors import DmlbenchError
from dmlbench.models.meta_classes import (ATTEMPTS, _unused_codes, assign_meta_classes, balanced_groups,
                                          codes_unique, fill_in_unique_codes)


def seed_draws(num_classes, meta, learners, seed):
    """The seed's loop: up to ATTEMPTS balanced draws from one stream, stopping at the first with unique codes."""
    rng, draws = np.random.default_rng(seed), []
    for _ in range(ATTEMPTS):
        draws.append(np.stack([balanced_groups(num_classes, meta, rng) for _ in range(learners)]))
        if codes_unique(draws[-1]):
            break
    return draws


def columns(assignment):
    return [tuple(int(v) for v in column) for column in assignment.T]


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


def test_too_few_codes_for_the_classes_is_one_line():
    # 1 learner x 2 meta classes hold 2 ** 1 = 2 codes: 5 classes cannot all have their own.
    with pytest.raises(DmlbenchError, match=r"1 learner\(s\) x 2 meta classes give only 2 distinct codes, fewer "
                                            r"than the 5 training classes: raise lrec.ensemble_size"):
        assign_meta_classes(5, 2, 1, seed=0)
    assert codes_unique(assign_meta_classes(4, 2, 2, seed=0))  # 2 ** 2 = 4 codes: exactly enough


def test_a_successful_draw_is_returned_as_drawn():
    draws = seed_draws(98, 12, 48, seed=0)
    assert codes_unique(draws[-1])
    assert np.array_equal(assign_meta_classes(98, 12, 48, seed=0), draws[-1])


def test_ten_failed_draws_are_filled_in_with_the_whole_code_space():
    # 4 learners x 2 meta classes = 16 codes for 16 classes: a balanced draw is unique with probability
    # (4900 / 12870) x (1296 / 12870) x (256 / 12870) ~ 7.6e-4, so seed 0's ten draws all share codes (checked
    # below) and the fill-in must complete the code space: every one of the 16 codes exactly once.
    draws = seed_draws(16, 2, 4, seed=0)
    assert len(draws) == ATTEMPTS and not any(codes_unique(d) for d in draws)
    got = assign_meta_classes(16, 2, 4, seed=0)
    assert got.dtype == np.int64 and got.shape == (4, 16)
    assert sorted(columns(got)) == [tuple(int(b) for b in f"{n:04b}") for n in range(16)]
    _assert_first_holders_keep_their_codes(draws[-1], got)


@pytest.mark.parametrize(("classes", "meta", "learners"), [(20, 2, 5), (24, 3, 3)])
def test_fill_in_keeps_the_last_draws_codes_and_adds_unused_ones(classes, meta, learners):
    draws = seed_draws(classes, meta, learners, seed=3)
    assert len(draws) == ATTEMPTS and not codes_unique(draws[-1])  # a case that needs the fill-in
    got = assign_meta_classes(classes, meta, learners, seed=3)
    assert codes_unique(got) and got.min() >= 0 and got.max() == meta - 1
    _assert_first_holders_keep_their_codes(draws[-1], got)


def _assert_first_holders_keep_their_codes(last_draw, got):
    """The seed's result holds the last draw's distinct codes plus unused ones: here each stays with its first
    holder, and only the later holders of a shared code change, to codes the draw did not hold."""
    drawn, held, changed = columns(last_draw), set(), []
    for c, code in enumerate(drawn):
        if code in held:
            changed.append(c)
        else:
            held.add(code)
            assert columns(got)[c] == code
    assert changed and all(columns(got)[c] not in held for c in changed)
    assert len(changed) == len(drawn) - len(held)


@pytest.mark.parametrize("enumerate_up_to", [64, 1], ids=["listed", "sampled"])
def test_unused_codes_are_distinct_free_and_uniform(enumerate_up_to):
    # 2 ** 6 = 64 codes, 8 held; the listing and the redraw paths must both pick the 56 free ones uniformly.
    rng = np.random.default_rng(0)
    held = {tuple(int(b) for b in f"{n:06b}") for n in range(0, 64, 8)}
    counts: dict = {}
    for _ in range(2000):
        codes = [tuple(int(v) for v in c) for c in _unused_codes(held, 14, 2, 6, rng, enumerate_up_to)]
        assert len(set(codes)) == 14 and not set(codes) & held
        for code in codes:
            counts[code] = counts.get(code, 0) + 1
    assert len(counts) == 56
    # Each free code is drawn with probability 14/56 per call: mean 500, sd sqrt(2000 x 0.25 x 0.75) ~ 19.4;
    # 6 sd (+-116) keeps a uniform sampler inside for every one of the 56 codes, and a biased one (say, never
    # the top half of the space) far outside.
    assert all(abs(n - 500) < 116 for n in counts.values())


def test_fill_in_leaves_unique_codes_alone():
    unique = np.array([[0, 1, 1], [1, 0, 1]])
    assert np.array_equal(fill_in_unique_codes(unique, 2, np.random.default_rng(0)), unique)


@pytest.mark.parametrize("meta", [1, 6])
def test_meta_classes_out_of_range(meta):
    with pytest.raises(DmlbenchError, match=f"lrec.meta_classes must be in \\[2, 5\\].*got {meta}"):
        assign_meta_classes(5, meta, 4, seed=0)
