from collections import Counter

import numpy as np
import pytest

from dmlbench.data.sampler import (DistributedPxKSampler, PxKSampler, SeededBatches, ShuffledBatchSampler,
                                   epoch_batch_sizes)
from dmlbench.errors import DmlbenchError

# 10 classes of uneven sizes (7, 6, 6, 5, 4, 3, 2, 1, 8, 6 images) as in test_sampler.py: short classes occur.
SIZES = [7, 6, 6, 5, 4, 3, 2, 1, 8, 6]
UNEVEN = [c for round_ in range(max(SIZES)) for c, n in enumerate(SIZES) if round_ < n]
# 12 classes of 5 images: with K = 3 every class gives a full K-group.
EVEN = [c for _ in range(5) for c in range(12)]


def epoch_batches(sampler, epoch):
    sampler.set_epoch(epoch)
    return list(sampler)


def per_rank(labels, p, k, world, epoch, seed=3):
    """The epoch's batches of every rank: [rank][step] -> indices."""
    samplers = [DistributedPxKSampler(labels, p, k, seed, rank=r, world_size=world) for r in range(world)]
    return [epoch_batches(s, epoch) for s in samplers]


@pytest.mark.parametrize("labels", [EVEN, UNEVEN], ids=["even", "uneven"])
@pytest.mark.parametrize("world", [2, 4])
def test_slices_in_rank_order_are_the_single_process_batch(labels, world):
    single = PxKSampler(labels, classes_per_batch=4, images_per_class=3, seed=3)
    for epoch in range(4):
        ranks = per_rank(labels, 4, 3, world, epoch)
        expected = epoch_batches(single, epoch)
        assert all(len(batches) == len(expected) == len(single) for batches in ranks)
        for step, batch in enumerate(expected):
            parts = [batches[step] for batches in ranks]
            joined = [index for part in parts for index in part]
            assert joined == batch  # same indices, same order
            assert all(len(part) == 12 // world for part in parts)  # equal sizes, as all_gather needs
            assert len(set(joined)) == 12  # no index on two ranks


@pytest.mark.parametrize("world", [2, 4])
def test_full_k_groups_give_each_rank_whole_classes(world):
    for epoch in range(4):
        ranks = per_rank(EVEN, 4, 3, world, epoch)
        for step in range(len(ranks[0])):
            counts = [Counter(EVEN[i] for i in batches[step]) for batches in ranks]
            assert all(sorted(c.values()) == [3] * (4 // world) for c in counts)  # P/W classes, K images each
            classes = [set(c) for c in counts]
            assert len(set().union(*classes)) == 4  # no class on two ranks


def test_short_classes_may_straddle_ranks_but_batch_is_kept():
    # A class with fewer than K images shifts the later groups: some class then lands on both ranks.
    straddled = 0
    for epoch in range(10):
        rank0, rank1 = per_rank(UNEVEN, 4, 3, 2, epoch)
        straddled += sum(bool({UNEVEN[i] for i in a} & {UNEVEN[i] for i in b}) for a, b in zip(rank0, rank1))
    assert straddled > 0


def test_offset_len_and_epochs_follow_the_single_sampler():
    sampler = DistributedPxKSampler(EVEN, 4, 3, seed=0, rank=1, world_size=2)
    assert (sampler.per_rank, sampler.offset, len(sampler)) == (6, 6, len(EVEN) // 12)
    assert epoch_batches(sampler, 1) != epoch_batches(sampler, 2)
    assert epoch_batches(sampler, 1) == epoch_batches(sampler, 1)


def test_for_rank_keeps_a_set_epoch_length():
    single = PxKSampler(UNEVEN, 4, 3, seed=1, num_batches=9)
    ranks = [single.for_rank(r, 2) for r in range(2)]
    for epoch in range(2):
        expected = epoch_batches(single, epoch)
        parts = [epoch_batches(s, epoch) for s in ranks]
        assert all(len(s) == len(p) == 9 for s, p in zip(ranks, parts))
        assert [a + b for a, b in zip(*parts)] == expected  # the slices rejoin the single process's batches


def test_one_process_is_the_single_sampler():
    single = PxKSampler(UNEVEN, 4, 3, seed=0)
    alone = DistributedPxKSampler(UNEVEN, 4, 3, seed=0, rank=0, world_size=1)
    assert epoch_batches(alone, 5) == epoch_batches(single, 5)


@pytest.mark.parametrize("p, rank, world, message", [
    (6, 0, 4, (r"classes_per_batch 6 must be divisible by the number of processes 4: set classes_per_batch to a "
               r"multiple of 4, or run 3 processes")),
    (3, 0, 2, r"classes_per_batch 3 must be divisible by the number of processes 2: .* or run 1 processes"),
    (4, 2, 2, r"rank 2 of world size 2 is impossible"),
    (4, 0, 0, r"rank 0 of world size 0 is impossible"),
])
def test_bad_process_counts_are_one_clear_error(p, rank, world, message):
    with pytest.raises(DmlbenchError, match=message):
        DistributedPxKSampler(EVEN, p, 2, seed=0, rank=rank, world_size=world)


def shuffled_ranks(images, batch, world, epoch, seed=3):
    samplers = [ShuffledBatchSampler(images, batch, seed).for_rank(r, world) for r in range(world)]
    for sampler in samplers:
        sampler.set_epoch(epoch)
    return samplers, [list(s) for s in samplers]


@pytest.mark.parametrize(("images", "world"), [(77, 4), (21, 2), (19, 2), (13, 2), (76, 4), (74, 2)])
def test_shuffled_rank_slices_rejoin_the_w_process_batches_in_equal_shares(images, world):
    batch = 8 if images < 70 else 16
    for epoch in range(3):
        samplers, ranks = shuffled_ranks(images, batch, world, epoch)
        order = np.random.default_rng([3, epoch]).permutation(images).tolist()
        sizes = epoch_batch_sizes(images, batch, world)
        assert all(len(s) == len(sizes) == len(r) for s, r in zip(samplers, ranks))
        start = 0
        for step, size in enumerate(sizes):
            parts = [r[step] for r in ranks]
            assert all(len(p) == size // world >= 2 for p in parts)  # equal shares (all_gather), BatchNorm-able
            assert [i for p in parts for i in p] == order[start: start + size]  # the global batch, rank order
            start += size
        assert images - start < world  # the images left out of this epoch: fewer than one per process


def test_with_a_rest_that_divides_the_processes_are_one_process_exactly():
    # 76 = 4 x 16 + 12: the last batch of 12 splits 3 per process, so 4 processes see one process's batches.
    single = ShuffledBatchSampler(76, 16, seed=3)
    _, ranks = shuffled_ranks(76, 16, 4, epoch=0)
    assert [[i for r in ranks for i in r[step]] for step in range(len(single))] == list(single)


def test_the_augmentation_slots_follow_each_batchs_share():
    # The last batch's shares are 3 wide, not 4: each rank's offset must follow so the slots (hence the
    # augmentation seeds) are the single process's global slots 0..11.
    single = SeededBatches(ShuffledBatchSampler(76, 16, seed=3), seed=9)
    per_rank = [SeededBatches(ShuffledBatchSampler(76, 16, seed=3).for_rank(r, 4), seed=9) for r in range(4)]
    for seeded in (single, *per_rank):
        seeded.set_position(0, 0)
    joined = [[pair for part in parts for pair in part] for parts in zip(*map(list, per_rank))]
    assert joined == list(single) and len(joined[-1]) == 12


@pytest.mark.parametrize(("batch", "world", "message"), [
    (4, 4, r"batch_size 4 over 4 processes gives each 1 image, and BatchNorm trains on each process's share: set "
           r"batch_size to at least 8 \(2 per process\), or run fewer processes"),
    (6, 4, r"batch_size 6 must be divisible by the number of processes 4"),
])
def test_shuffled_batches_too_small_or_uneven_for_the_processes_are_one_line(batch, world, message):
    with pytest.raises(DmlbenchError, match=message):
        ShuffledBatchSampler(40, batch, seed=0).for_rank(0, world)
