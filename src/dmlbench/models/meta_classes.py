"""LREC's meta classes: per learner, the training classes split into balanced groups, every class with a code
(its group in each learner) that no other class shares."""

import numpy as np

from dmlbench.errors import DmlbenchError

ATTEMPTS = 10  # redraws before filling in unique codes (the seed's limit)
ENUMERATE_UP_TO = 1 << 20  # code spaces up to this size are listed to draw free codes; larger ones are sampled


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
    up to ATTEMPTS times until every class's code is unique; after that the last draw's shared codes are
    replaced by unused ones (:func:`fill_in_unique_codes`), as the seed does instead of failing."""
    if not 2 <= meta_classes <= num_classes:
        raise DmlbenchError(f"lrec.meta_classes must be in [2, {num_classes}] (the training classes), got "
                            f"{meta_classes}: lower it for this dataset (lrec.per_dataset)")
    if meta_classes ** ensemble_size < num_classes:  # Python ints: 12 ** 48 is exact
        raise DmlbenchError(f"lrec: {ensemble_size} learner(s) x {meta_classes} meta classes give only "
                            f"{meta_classes ** ensemble_size} distinct codes, fewer than the {num_classes} training "
                            f"classes: raise lrec.ensemble_size or lrec.meta_classes")
    rng = np.random.default_rng(seed)
    for _ in range(ATTEMPTS):
        assignment = np.stack([balanced_groups(num_classes, meta_classes, rng) for _ in range(ensemble_size)])
        if codes_unique(assignment):
            return assignment.astype(np.int64)
    return fill_in_unique_codes(assignment, meta_classes, rng).astype(np.int64)


def fill_in_unique_codes(assignment: np.ndarray, meta_classes: int, rng: np.random.Generator,
                         enumerate_up_to: int = ENUMERATE_UP_TO) -> np.ndarray:
    """``assignment`` with every class whose code an earlier class already holds given a new code, drawn without
    replacement and uniformly from the codes no class of ``assignment`` holds.

    The seed keeps the draw's distinct codes, adds that many unused ones drawn uniformly, and hands the set to the
    classes in Python's set order; keeping each code with its first holder gives the same set of codes, matched to
    the (interchangeable) classes in another arbitrary order. Group balance is not kept, in either.
    """
    learners, num_classes = assignment.shape
    held, repeats = set(), []
    for c, code in enumerate(map(tuple, assignment.T.tolist())):
        if code in held:
            repeats.append(c)
        else:
            held.add(code)
    filled = assignment.copy()
    if repeats:
        filled[:, repeats] = _unused_codes(held, len(repeats), meta_classes, learners, rng, enumerate_up_to).T
    return filled


def _unused_codes(held: set, count: int, meta_classes: int, learners: int, rng: np.random.Generator,
                  enumerate_up_to: int) -> np.ndarray:
    """(count, learners) distinct codes outside ``held``, uniform without replacement: listed when the code space
    is small or mostly held, else drawn one by one and redrawn when taken (at least half the space is free then,
    so a code takes at most 2 draws on average)."""
    total = meta_classes ** learners
    if total <= max(enumerate_up_to, 2 * (len(held) + count)):
        shape = (meta_classes,) * learners
        taken = np.ravel_multi_index(np.array(sorted(held)).T, shape) if held else np.array([], dtype=np.int64)
        free = np.setdiff1d(np.arange(total), taken)
        return np.stack(np.unravel_index(rng.choice(free, size=count, replace=False), shape), axis=1)
    chosen: list[tuple] = []
    taken = set(held)
    while len(chosen) < count:
        code = tuple(rng.integers(0, meta_classes, size=learners).tolist())
        if code not in taken:
            taken.add(code)
            chosen.append(code)
    return np.array(chosen)
