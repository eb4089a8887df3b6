"""LREC's meta classes: per learner, the training classes split into balanced groups, every class with a code
(its group in each learner) that no other class shares."""

import numpy as np

from dmlbench.errors import DmlbenchError

ATTEMPTS = 10  # redraws before giving up on unique codes (the seed's limit)


def balanced_groups(num_classes: int, meta_classes: int, rng: np.random.Generator) -> np.ndarray:
    """One learner's meta label per class: shuffled copies of range(meta_classes) laid end to end, cut to
    ``num_classes``, shuffled again, so group sizes differ by at most one."""
    copies = -(-num_classes // meta_classes)  # ceil
    repeated = np.concatenate([rng.permutation(meta_classes) for _ in range(copies)])[:num_classes]
    return rng.permutation(repeated)


def codes_unique(assignment: np.ndarray) -> bool:
    """Whether every class (column) has its own tuple of meta labels across learners (rows)."""
    return len({tuple(column) for column in assignment.T}) == assignment.shape[1]


def assign_meta_classes(num_classes: int, meta_classes: int, ensemble_size: int, seed: int) -> np.ndarray:
    """(ensemble_size, num_classes) int64 meta labels drawn from ``seed``: balanced groups per learner, redrawn
    up to ATTEMPTS times until every class's code is unique; a DmlbenchError if it never is."""
    if not 2 <= meta_classes <= num_classes:
        raise DmlbenchError(f"lrec.meta_classes must be in [2, {num_classes}] (the training classes), got "
                            f"{meta_classes}: lower it for this dataset (lrec.per_dataset)")
    rng = np.random.default_rng(seed)
    for _ in range(ATTEMPTS):
        assignment = np.stack([balanced_groups(num_classes, meta_classes, rng) for _ in range(ensemble_size)])
        if codes_unique(assignment):
            return assignment.astype(np.int64)
    raise DmlbenchError(f"lrec: {ensemble_size} learner(s) x {meta_classes} meta classes gave two of the "
                        f"{num_classes} training classes the same code in {ATTEMPTS} draws: raise "
                        f"lrec.ensemble_size or lrec.meta_classes")
