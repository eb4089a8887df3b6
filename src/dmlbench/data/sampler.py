"""P x K batch sampler: P classes, K images each, deterministic per (seed, epoch)."""

from collections import defaultdict
from typing import Iterable, Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from dmlbench.errors import DmlbenchError


class PxKSampler(Sampler[list[int]]):
    """Batches of exactly P*K distinct indices: classes without repeat, min(K, n_c) images of each.

    A class with fewer than K images gives all it has, and more classes are added until the batch is
    full (the last one cut short to fit), so every batch has P*K images.
    """

    def __init__(self, labels: Sequence[int], classes_per_batch: int, images_per_class: int,
                 num_batches: int | None, seed: int):
        self.by_class = indices_by_class(labels)
        self.p, self.k, self.seed, self.epoch = classes_per_batch, images_per_class, seed, 0
        self.batch_size = classes_per_batch * images_per_class
        _validate(self.by_class, len(labels), classes_per_batch, images_per_class)
        self.num_batches = len(labels) // self.batch_size if num_batches is None else num_batches
        if self.num_batches < 1:
            raise DmlbenchError(f"num_batches must be >= 1, got {num_batches}: pass a positive number "
                                f"(or None for train images // batch size)")

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches ``__iter__`` yields (like DistributedSampler)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        for _ in range(self.num_batches):
            yield pack_groups(shuffled_k_groups(self.by_class, self.k, rng), self.batch_size)


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


def _validate(by_class: dict[int, list[int]], n: int, p: int, k: int) -> None:
    fix = "lower classes_per_batch or images_per_class"
    if p < 1 or k < 1:
        raise DmlbenchError(f"classes_per_batch ({p}) and images_per_class ({k}) must both be >= 1: "
                            f"set them to positive integers")
    if p * k > n:
        raise DmlbenchError(f"a batch of classes_per_batch x images_per_class = {p} x {k} = {p * k} is larger "
                            f"than the {n} training images: {fix}")
    if len(by_class) < p:
        raise DmlbenchError(f"classes_per_batch = {p} but the training split has only {len(by_class)} "
                            f"classes: lower classes_per_batch to at most {len(by_class)}")
    available = sum(min(k, len(v)) for v in by_class.values())
    if available < p * k:
        raise DmlbenchError(f"with images_per_class = {k} all {len(by_class)} classes together give only "
                            f"{available} images per batch, fewer than {p} x {k} = {p * k}: {fix}")
    with_pairs = sum(len(v) >= 2 for v in by_class.values())
    if with_pairs < 2:
        raise DmlbenchError(f"only {with_pairs} of the {len(by_class)} training classes have 2 or more images; "
                            f"batch-hard triplet needs positives in at least 2 classes: use a training split "
                            f"with more images per class")
