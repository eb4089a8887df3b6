"""Batch samplers: the contract every method's sampler meets, P x K class-balanced batches and plain shuffled
batches, both deterministic per (seed, epoch), and the wrapper that pairs each index with its augmentation seed."""

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

import numpy as np
from torch.utils.data import Sampler

from dmlbench.errors import DmlbenchError


class BatchSampler(Protocol):
    """What the training loop needs of a method's batch sampler.

    An epoch's batches are a pure function of (seed, epoch), so a resumed run skips the finished batches and gets
    the same remaining ones. ``for_rank`` gives this process's equal slice of every global batch under DDP, and
    ``offset`` is that slice's position in the global batch (0 in one process), which seeds the augmentation.
    """

    offset: int

    def set_epoch(self, epoch: int) -> None: ...

    def for_rank(self, rank: int, world_size: int) -> "BatchSampler": ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[list[int]]: ...


class PxKSampler(Sampler[list[int]]):
    """Batches of exactly P*K distinct indices: classes without repeat, min(K, n_c) images of each.

    A class with fewer than K images gives all it has, and more classes are added until the batch is
    full (the last one cut short to fit), so every batch has P*K images.
    """

    offset = 0

    def __init__(self, labels: Sequence[int], classes_per_batch: int, images_per_class: int, seed: int,
                 require_pairs: bool = False, num_batches: int | None = None):
        """``require_pairs``: refuse data where batch-hard mining finds no positive pair (triplet losses).
        ``num_batches``: the epoch's length in batches (None: training images // batch size)."""
        self.labels = list(labels)
        self.by_class = indices_by_class(labels)
        self.p, self.k, self.seed, self.epoch = classes_per_batch, images_per_class, seed, 0
        self.require_pairs = require_pairs
        self.batch_size = classes_per_batch * images_per_class
        _validate(self.by_class, len(labels), classes_per_batch, images_per_class, require_pairs)
        if num_batches is not None and (isinstance(num_batches, bool) or not isinstance(num_batches, int)
                                        or num_batches < 1):
            raise DmlbenchError(f"an epoch of {num_batches!r} batches is impossible: give num_batches as an "
                                f"integer >= 1 (or None for training images // batch size)")
        self.num_batches = len(labels) // self.batch_size if num_batches is None else num_batches

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches ``__iter__`` yields (like DistributedSampler)."""
        self.epoch = epoch

    def for_rank(self, rank: int, world_size: int) -> "PxKSampler":
        """The same batches split over ``world_size`` processes: this one's share (itself in one process)."""
        if world_size == 1:
            return self
        return DistributedPxKSampler(self.labels, self.p, self.k, self.seed, rank, world_size, self.require_pairs,
                                     num_batches=self.num_batches)

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        for _ in range(self.num_batches):
            yield pack_groups(shuffled_k_groups(self.by_class, self.k, rng), self.batch_size)



class DistributedPxKSampler(PxKSampler):
    """This rank's share of each batch :class:`PxKSampler` yields: the ``rank``-th of ``world_size`` equal slices.

    Every rank draws the same global batch (same labels, P, K, seed, epoch) and keeps its contiguous slice, so
    the slices concatenated in rank order are exactly the single-process batch and all have P*K/W indices (as
    all_gather needs). When every class in the batch gives K images, the slice boundaries fall between
    K-groups: each rank holds P/W whole classes. A class with fewer than K images shifts the later groups, and
    then one class may straddle two ranks; the whole-batch losses see the gathered batch, so they are unchanged.
    """

    def __init__(self, labels: Sequence[int], classes_per_batch: int, images_per_class: int, seed: int,
                 rank: int, world_size: int, require_pairs: bool = False, num_batches: int | None = None):
        _validate_ranks(classes_per_batch, rank, world_size, "classes_per_batch")
        super().__init__(labels, classes_per_batch, images_per_class, seed, require_pairs, num_batches)
        self.rank, self.world_size = rank, world_size
        self.per_rank = self.batch_size // world_size
        self.offset = rank * self.per_rank  # position of this rank's first index in the global batch

    def __iter__(self) -> Iterator[list[int]]:
        for batch in super().__iter__():
            yield batch[self.offset: self.offset + self.per_rank]


class ShuffledBatchSampler(Sampler[list[int]]):
    """Plain shuffled batches (a shuffled DataLoader without drop_last), drawn from (seed, epoch): every image
    once per epoch, the last partial batch kept (:func:`epoch_batch_sizes` says how, in one process and W)."""

    offset = 0

    def __init__(self, num_samples: int, batch_size: int, seed: int, world_size: int = 1):
        if batch_size < 2 or batch_size > num_samples:
            raise DmlbenchError(f"a batch of {batch_size} images does not fit the {num_samples} training images: "
                                f"set the batch size between 2 (BatchNorm trains on a batch) and {num_samples}")
        self.num_samples, self.batch_size, self.seed, self.epoch = num_samples, batch_size, seed, 0
        self.sizes = epoch_batch_sizes(num_samples, batch_size, world_size)
        self.num_batches = len(self.sizes)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def for_rank(self, rank: int, world_size: int) -> "ShuffledBatchSampler":
        """The batches of ``world_size`` processes (the last one sized for them), and this one's contiguous slice."""
        if world_size == 1:
            return self
        _validate_ranks(self.batch_size, rank, world_size, "batch_size")
        if self.batch_size // world_size < 2:
            raise DmlbenchError(f"batch_size {self.batch_size} over {world_size} processes gives each 1 image, and "
                                f"BatchNorm trains on each process's share: set batch_size to at least "
                                f"{2 * world_size} (2 per process), or run fewer processes")
        return _RankSlice(ShuffledBatchSampler(self.num_samples, self.batch_size, self.seed, world_size), rank,
                          world_size)

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.num_samples).tolist()
        start = 0
        for size in self.sizes:
            yield order[start: start + size]
            start += size


def epoch_batch_sizes(num_samples: int, batch_size: int, world_size: int = 1) -> list[int]:
    """The sizes of an epoch's batches: full batches, then the rest of the images as a last batch.

    Each of ``world_size`` processes takes an equal share of every batch, so the rest is cut to a multiple of
    the processes (under DDP fewer than W images may wait for the next epoch's shuffle). BatchNorm cannot train
    on a share of one image where its feature map is 1 x 1 (and gets one image's statistics elsewhere), so a
    rest of one image per process is folded into the previous batch rather than dropped: every image still
    trains once per epoch, as in the seed's loader, in one step fewer.
    """
    full, rest = divmod(num_samples, batch_size)
    kept = rest - rest % world_size
    sizes = [batch_size] * full
    if kept // world_size >= 2:
        sizes.append(kept)
    elif kept:
        sizes[-1] += kept
    return sizes


class _RankSlice:
    """This rank's contiguous share of every batch of ``sampler`` (global batches are the same on every rank)."""

    def __init__(self, sampler, rank: int, world_size: int):
        self.sampler, self.rank, self.world_size = sampler, rank, world_size
        self.per_rank = sampler.batch_size // world_size
        self.offset = rank * self.per_rank

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def for_rank(self, rank: int, world_size: int):
        raise ValueError("already split over ranks")

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.sampler:
            # A last (or folded) batch has another size: its share and this rank's offset follow it, so the
            # augmentation seeds (by global slot) stay those of one process.
            self.per_rank = len(batch) // self.world_size
            self.offset = self.rank * self.per_rank
            yield batch[self.offset: self.offset + self.per_rank]


class SeededBatches:
    """A batch sampler's epoch from batch ``start`` on, each index paired with its augmentation seed."""

    def __init__(self, batch_sampler: BatchSampler, seed: int):
        self.batch_sampler, self.seed, self.epoch, self.start = batch_sampler, seed, 0, 0

    def set_position(self, epoch: int, start: int) -> None:
        """Select the epoch and the first batch the next ``iter`` yields (the DataLoader is reused)."""
        self.epoch, self.start = epoch, start
        self.batch_sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.batch_sampler) - self.start

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step, batch in enumerate(self.batch_sampler):
            if step >= self.start:
                # Under DDP a rank holds a slice of the global batch: seeding by the global slot gives every image
                # the augmentation it gets in one process.
                offset = self.batch_sampler.offset
                yield [(index, self._sample_seed(step, offset + slot)) for slot, index in enumerate(batch)]

    def _sample_seed(self, step: int, slot: int) -> int:
        return int(np.random.SeedSequence([self.seed, self.epoch, step, slot]).generate_state(1)[0])


def shuffled_k_groups(by_class: dict[int, list[int]], k: int, rng: np.random.Generator) -> Iterator[list[int]]:
    """K-groups of the classes in a fresh shuffled order, each class at most once (drawn lazily)."""
    classes = list(by_class)
    for c in rng.permutation(len(classes)):
        yield k_group(by_class[classes[c]], k, rng)


def pack_groups(groups: Iterable[list[int]], size: int) -> list[int]:
    """Concatenate groups until exactly ``size`` indices; the last group used is cut short to fit."""
    batch: list[int] = []
    for group in groups:
        batch.extend(group[: size - len(batch)])
        if len(batch) == size:
            return batch
    raise ValueError(f"the groups hold only {len(batch)} indices, fewer than the batch size {size}")


def k_group(indices: list[int], k: int, rng: np.random.Generator) -> list[int]:
    """min(k, len(indices)) distinct indices of one class, drawn without replacement."""
    chosen = rng.choice(len(indices), size=min(k, len(indices)), replace=False)
    return [indices[i] for i in chosen]


def indices_by_class(labels: Sequence[int]) -> dict[int, list[int]]:
    """Dataset indices grouped by label, classes in ascending label order."""
    by_class: dict[int, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        by_class[int(label)].append(index)
    return dict(sorted(by_class.items()))


def _validate(by_class: dict[int, list[int]], n: int, p: int, k: int, require_pairs: bool) -> None:
    fix = "lower classes_per_batch or images_per_class"
    if p < 1 or k < 1:
        raise DmlbenchError(f"classes_per_batch ({p}) and images_per_class ({k}) must both be >= 1: "
                            f"set them to positive integers")
    if p * k > n:
        raise DmlbenchError(f"a batch of classes_per_batch x images_per_class = {p} x {k} = {p * k} is larger "
                            f"than the {n} training images: {fix}")
    if len(by_class) < p:
        least = 2 if require_pairs else 1  # a triplet batch needs two classes
        fix = (f"lower classes_per_batch to at most {len(by_class)}" if len(by_class) >= least else
               f"use a training split with at least {least} classes")
        raise DmlbenchError(f"classes_per_batch = {p} but the training split has only {len(by_class)} "
                            f"class(es): {fix}")
    available = sum(min(k, len(v)) for v in by_class.values())
    if available < p * k:
        raise DmlbenchError(f"with images_per_class = {k} all {len(by_class)} classes together give only "
                            f"{available} images per batch, fewer than {p} x {k} = {p * k}: {fix}")
    with_pairs = sum(len(v) >= 2 for v in by_class.values())
    if require_pairs and with_pairs < 2:
        raise DmlbenchError(f"only {with_pairs} of the {len(by_class)} training classes have 2 or more images; "
                            f"batch-hard triplet needs positives in at least 2 classes: use a training split "
                            f"with more images per class")


def _validate_ranks(p: int, rank: int, world: int, what: str) -> None:
    if world < 1 or not 0 <= rank < world:
        raise DmlbenchError(f"rank {rank} of world size {world} is impossible: need world size >= 1 and "
                            f"0 <= rank < world size (torchrun sets both)")
    if p % world:
        lower = max(m for m in range(1, world + 1) if p % m == 0)
        raise DmlbenchError(f"{what} {p} must be divisible by the number of processes {world}: "
                            f"set {what} to a multiple of {world}, or run {lower} processes")
