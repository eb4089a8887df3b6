from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from dmlbench.data.sampler import (PxKSampler, ShuffledBatchSampler, epoch_batch_sizes, indices_by_class, k_group,
                                   pack_groups, shuffled_k_groups)
from dmlbench.errors import DmlbenchError

# 10 classes of uneven sizes: 7, 6, 6, 5, 4, 3, 2, 1, 8, 6 images (48 in all), labels interleaved.
SIZES = [7, 6, 6, 5, 4, 3, 2, 1, 8, 6]
LABELS = [c for round_ in range(max(SIZES)) for c, n in enumerate(SIZES) if round_ < n]


def batches(sampler, epoch=0):
    sampler.set_epoch(epoch)
    return list(sampler)


def runs(batch, labels):
    """The batch as runs of consecutive equal labels: [(label, count), ...]."""
    out = []
    for index in batch:
        if out and out[-1][0] == labels[index]:
            out[-1][1] += 1
        else:
            out.append([labels[index], 1])
    return out


def test_every_batch_has_p_times_k_unique_indices():
    sampler = PxKSampler(LABELS, classes_per_batch=3, images_per_class=4, seed=0)
    for epoch in range(5):
        for batch in batches(sampler, epoch):
            assert len(batch) == 12 and len(set(batch)) == 12
            assert all(0 <= i < len(LABELS) for i in batch)


def test_classes_give_min_k_images_and_only_the_last_is_cut():
    sampler = PxKSampler(LABELS, classes_per_batch=3, images_per_class=4, seed=1)
    saw_small_class = saw_cut = False
    for batch in (b for epoch in range(12) for b in batches(sampler, epoch)):
        groups = runs(batch, LABELS)
        counts = Counter(LABELS[i] for i in batch)
        assert len(groups) == len(counts)  # each class is one contiguous K-group: no class repeats
        assert all(n <= 4 for n in counts.values())
        for label, n in groups[:-1]:
            assert n == min(4, SIZES[label])  # a class with fewer than K images gives all of them
            saw_small_class |= SIZES[label] < 4
        last_label, last_n = groups[-1]
        assert 1 <= last_n <= min(4, SIZES[last_label])
        saw_cut |= last_n < min(4, SIZES[last_label])
    assert saw_small_class and saw_cut  # the uneven sizes exercised both rules


def test_tiny_classes_fill_the_batch_with_all_their_images():
    # 4 classes of 2 images, P=2, K=4: each class gives both its images, so a batch of 8 is the whole set.
    labels = [0, 0, 1, 1, 2, 2, 3, 3]
    sampler = PxKSampler(labels, classes_per_batch=2, images_per_class=4, seed=0)
    for batch in batches(sampler):
        assert sorted(batch) == list(range(8))


def test_same_seed_and_epoch_repeat_different_epoch_or_seed_differ():
    a = PxKSampler(LABELS, 3, 4, seed=5)
    b = PxKSampler(LABELS, 3, 4, seed=5)
    c = PxKSampler(LABELS, 3, 4, seed=6)
    assert batches(a, 2) == batches(b, 2)
    assert batches(a, 2) == batches(a, 2)  # iterating again gives the same epoch
    assert batches(a, 2) != batches(a, 3)
    assert batches(a, 2) != batches(c, 2)


def test_global_rng_state_neither_used_nor_changed():
    sampler = PxKSampler(LABELS, 3, 4, seed=0)
    torch.manual_seed(1)
    np.random.seed(1)
    first = batches(sampler)
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    torch.manual_seed(2)
    np.random.seed(2)
    torch.manual_seed(1)
    np.random.seed(1)
    again = batches(sampler)
    assert first == again
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state)


def test_len_defaults_to_images_over_batch_size():
    sampler = PxKSampler(LABELS, classes_per_batch=3, images_per_class=4, seed=0)
    assert len(sampler) == 48 // 12 == 4 == len(batches(sampler))


def test_num_batches_sets_the_epoch_length_beyond_images_over_batch_size():
    # CGD-TF's seed sets its epoch by its largest class, not by images // batch size: 10 batches of 12 from 48.
    default = PxKSampler(LABELS, classes_per_batch=3, images_per_class=4, seed=2)
    longer = PxKSampler(LABELS, classes_per_batch=3, images_per_class=4, seed=2, num_batches=10)
    shorter = PxKSampler(LABELS, classes_per_batch=3, images_per_class=4, seed=2, num_batches=1)
    for epoch in range(3):
        got = batches(longer, epoch)
        assert len(longer) == len(got) == 10
        assert all(len(b) == 12 and len(set(b)) == 12 for b in got)
        # The batches are drawn one after another from one (seed, epoch) stream: the length only cuts it.
        assert got[:4] == batches(default, epoch)
        assert batches(shorter, epoch) == got[:1]


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "4"])
def test_num_batches_must_be_a_positive_integer(bad):
    with pytest.raises(DmlbenchError, match=rf"an epoch of {bad!r} batches is impossible: give num_batches"):
        PxKSampler(LABELS, 3, 4, seed=0, num_batches=bad)


def test_drives_a_dataloader():
    dataset = TensorDataset(torch.arange(len(LABELS)), torch.tensor(LABELS))
    sampler = PxKSampler(LABELS, classes_per_batch=2, images_per_class=3, seed=0)
    loader = DataLoader(dataset, batch_sampler=sampler)
    got = [index.tolist() for index, _ in loader]
    assert got == batches(sampler) and len(got) == 8
    assert all(len(b) == 6 for b in got)


def test_group_helpers_build_and_pack():
    by_class = indices_by_class([3, 1, 3, 1, 3, 2])
    assert by_class == {1: [1, 3], 2: [5], 3: [0, 2, 4]}
    rng = np.random.default_rng(0)
    group = k_group(by_class[3], 2, rng)
    assert len(group) == 2 and set(group) <= {0, 2, 4}
    groups = list(shuffled_k_groups(by_class, 2, rng))
    assert sorted(len(g) for g in groups) == [1, 2, 2]  # each class once, min(K, n_c) images
    assert pack_groups([[1, 2], [3], [4, 5, 6]], 4) == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="fewer than the batch size 5"):
        pack_groups([[1, 2], [3]], 5)


@pytest.mark.parametrize("labels, p, k, pairs, message", [
    (LABELS, 0, 4, False, r"classes_per_batch \(0\) and images_per_class \(4\) must both be >= 1"),
    (LABELS, 3, 0, False, r"classes_per_batch \(3\) and images_per_class \(0\) must both be >= 1"),
    (LABELS, 10, 5, False, r"10 x 5 = 50 is larger than the 48 training images: lower classes_per_batch "
                           r"or images_per_class"),
    (LABELS, 11, 2, False, r"classes_per_batch = 11 but the training split has only 10 class\(es\): lower "
                           r"classes_per_batch to at most 10$"),
    # One class: "at most 1" would only lead to the triplet error next; the advice must be one that works.
    ([0] * 12, 2, 2, True, r"only 1 class\(es\): use a training split with at least 2 classes$"),
    ([0] * 10 + [1, 2], 2, 4, False, r"images_per_class = 4 all 3 classes together give only 6 images per "
                                     r"batch, fewer than 2 x 4 = 8: lower classes_per_batch or images_per_class"),
    ([0, 0, 1, 2, 3], 2, 2, True, r"only 1 of the 4 training classes have 2 or more images; batch-hard "
                                  r"triplet needs positives"),
])
def test_constructor_errors_name_values_and_fix(labels, p, k, pairs, message):
    with pytest.raises(DmlbenchError, match=message):
        PxKSampler(labels, classes_per_batch=p, images_per_class=k, seed=0, require_pairs=pairs)


def test_pairs_are_required_only_by_triplet_methods():
    """NormSoftmax-style classification trains on singleton classes; a triplet sampler refuses them."""
    labels = [0, 1, 2, 3, 4, 5, 6, 6]
    assert len(PxKSampler(labels, 2, 2, seed=0)) == 2
    with pytest.raises(DmlbenchError, match="batch-hard triplet needs positives"):
        PxKSampler(labels, 2, 2, seed=0, require_pairs=True)


def seed_loader_batches(order, batch_size):
    """The seed's shuffled DataLoader without drop_last: consecutive chunks of one permutation, the last partial."""
    return [order[i: i + batch_size] for i in range(0, len(order), batch_size)]


@pytest.mark.parametrize("num_samples", range(4, 16))
def test_shuffled_batches_are_the_seeds_loader_with_a_lone_last_image_folded(num_samples):
    sampler = ShuffledBatchSampler(num_samples, 4, seed=2)
    for epoch in range(3):
        order = np.random.default_rng([2, epoch]).permutation(num_samples).tolist()
        expected = seed_loader_batches(order, 4)
        if len(expected[-1]) == 1:  # a batch of one image cannot train BatchNorm: it joins the previous batch
            expected[-2:] = [expected[-2] + expected[-1]]
        got = batches(sampler, epoch)
        assert got == expected and len(sampler) == len(got)
        assert sorted(i for b in got for i in b) == list(range(num_samples))  # every image once per epoch
        assert min(map(len, got)) >= 2


@pytest.mark.parametrize(("images", "batch", "world", "sizes"), [
    (12, 3, 1, [3, 3, 3, 3]),
    (11, 3, 1, [3, 3, 3, 2]),  # the last partial batch kept
    (10, 3, 1, [3, 3, 4]),  # a last image alone is folded into the previous batch
    (77, 64, 4, [64, 12]),  # 13 left over 4 processes: 12 (3 each), one image waits for the next shuffle
    (21, 8, 2, [8, 8, 4]),
    (19, 8, 2, [8, 10]),  # 3 left: 2 (one each) folded, one waits
    (13, 4, 2, [4, 4, 4]),  # 1 left: nothing a process could share
    (64, 64, 8, [64]),
])
def test_epoch_batch_sizes(images, batch, world, sizes):
    assert epoch_batch_sizes(images, batch, world) == sizes
    assert images - sum(sizes) < world  # fewer than one image per process ever waits


def test_shuffled_batches_follow_seed_and_epoch():
    sampler = ShuffledBatchSampler(10, 3, seed=4)
    assert batches(sampler, 0) == batches(ShuffledBatchSampler(10, 3, seed=4), 0)
    assert batches(sampler, 0) != batches(sampler, 1)
    assert batches(sampler, 0) != batches(ShuffledBatchSampler(10, 3, seed=5), 0)


@pytest.mark.parametrize("batch_size", [0, 1, 11])
def test_a_shuffled_batch_must_hold_two_images_and_fit(batch_size):
    with pytest.raises(DmlbenchError, match=rf"a batch of {batch_size} images does not fit the 10 training images: "
                                            r"set the batch size between 2 \(BatchNorm trains on a batch\) and 10"):
        ShuffledBatchSampler(10, batch_size, seed=0)
