"""P x K batch sampler: P classes, K images each, deterministic per (seed, epoch)."""

from collections import defaultdict
from typing import Iterator, Sequence

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
        self.by_class = _indices_by_class(labels)
        self.p, self.k, self.seed, self.epoch = classes_per_batch, images_per_class, seed, 0
        self.batch_size = classes_per_batch * images_per_class
        _validate(self.by_class, len(labels), classes_per_batch, images_per_class)
        self.num_batches = num_batches if num_batches is not None else len(labels) // self.batch_size

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose batches ``__iter__`` yields (like DistributedSampler)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        for _ in range(self.num_batches):
            yield self._batch(rng)

    def _batch(self, rng: np.random.Generator) -> list[int]:
        batch: list[int] = []
        classes = list(self.by_class)
        for c in rng.permutation(len(classes)):
            group = k_group(self.by_class[classes[c]], self.k, rng)
            batch.extend(group[: self.batch_size - len(batch)])
            if len(batch) == self.batch_size:
                return batch
        raise AssertionError("unreachable: the constructor checked the dataset holds a full batch")


def k_group(indices: list[int], k: int, rng: np.random.Generator) -> list[int]:
    """min(k, len(indices)) distinct indices of one class, drawn without replacement."""
    chosen = rng.choice(len(indices), size=min(k, len(indices)), replace=False)
    return [indices[i] for i in chosen]


def _indices_by_class(labels: Sequence[int]) -> dict[int, list[int]]:
    by_class: dict[int, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        by_class[int(label)].append(index)
    return dict(sorted(by_class.items()))


def _validate(by_class: dict[int, list[int]], n: int, p: int, k: int) -> None:
    if p < 1 or k < 1:
        raise DmlbenchError(f"classes_per_batch ({p}) and images_per_class ({k}) must both be >= 1")
    if p * k > n:
        raise DmlbenchError(f"a batch of {p} classes x {k} images = {p * k} is larger than the {n} training "
                            f"images: lower classes_per_batch or images_per_class")
    if len(by_class) < p:
        raise DmlbenchError(f"classes_per_batch = {p} but the training split has only {len(by_class)} "
                            f"classes: lower classes_per_batch")
    if sum(len(v) >= 2 for v in by_class.values()) < 2:
        raise DmlbenchError("fewer than 2 training classes have 2 or more images: batch-hard triplet needs "
                            "positives; use a larger dataset")
