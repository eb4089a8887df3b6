"""95 % bootstrap intervals of the retrieval metrics, resampling test classes, from the values of each query.

Queries of one class are not independent: in self-retrieval they are each other's relevant items, and one class
the model embeds well (or badly) lifts (or sinks) all of its queries together. The classes, not the images, are
what a test set samples (train and test classes are disjoint), so a resample draws as many classes as the queries
hold, with replacement, and takes all the queries of each drawn class. Resampling single queries instead would
treat a class of 12 correlated queries as 12 independent facts and give too narrow an interval.

Nothing is ranked again: a resample is a count per class, and a metric's resampled value is
(counts @ numerators) / (counts @ denominators) over the per-class sums of per_query.PerQuery.columns(). The
interval is the percentile one: the 2.5th and 97.5th percentiles of RESAMPLES such values. Seeded, so a metrics
file is reproducible, and the same counts serve every feature and both runs of a paired comparison.
"""

import numpy as np
import torch

from dmlbench.retrieval.per_query import PerQuery

RESAMPLES = 1000
SEED = 0
LEVEL = 0.95
BLOCK = 50  # resamples drawn at a time: a block of counts is BLOCK x classes int64 (4.5 MB at SOP's 11,316)


def bootstrap_facts(labels: torch.Tensor) -> dict:
    """How the intervals were made, for the metrics file: level, resamples, seed, the unit and how many."""
    return {"level": LEVEL, "resamples": RESAMPLES, "seed": SEED, "unit": "class", "method": "percentile",
            "classes": len(torch.unique(labels))}


def metric_intervals(values: dict[str, PerQuery]) -> dict[str, dict[str, list[float]]]:
    """{feature: {metric: [low, high]}}: one set of resampled classes for every feature (all share the labels)."""
    parts = list(values.values())
    stats = resampled(parts[0].labels, [p.columns() for p in parts])
    bounds, start = {}, 0
    for feature, part in values.items():
        names = part.names()
        low_high = percentile_interval(stats[:, start:start + len(names)])
        bounds[feature] = {name: [float(lo), float(hi)] for name, (lo, hi) in zip(names, low_high)}
        start += len(names)
    return bounds


def paired_differences(a: PerQuery, b: PerQuery) -> dict[str, tuple[float, float, float]]:
    """{metric: (A - B, low, high)}: the same resampled classes applied to both runs' queries (paired), so what
    the two runs share (which classes are easy) cancels out of the interval of their difference."""
    if not torch.equal(a.labels, b.labels) or a.ks != b.ks:
        raise ValueError("a paired comparison needs the same queries (labels) and the same K list")
    stats = resampled(a.labels, [a.columns(), b.columns()])
    m = len(a.names())
    low_high = percentile_interval(stats[:, :m] - stats[:, m:])
    point_a, point_b = a.metrics(), b.metrics()
    return {name: (point_a[name] - point_b[name], float(lo), float(hi))
            for name, (lo, hi) in zip(a.names(), low_high)}


def resampled(labels: torch.Tensor, columns: list[tuple[torch.Tensor, torch.Tensor]],
              resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """(resamples, metrics) float64: every metric of ``columns`` (one (numerators, denominators) pair per query
    and metric for each run or feature, laid side by side) recomputed on each resample of the classes of
    ``labels``. Each pair gets its own product with the counts: equal inputs then give bitwise equal outputs (one
    wider product may round columns differently), so a run compared with itself differs by exactly 0."""
    classes, inverse = np.unique(labels.numpy(), return_inverse=True)
    sums = [(_class_sums(inverse, len(classes), n.numpy()), _class_sums(inverse, len(classes), d.numpy()))
            for n, d in columns]
    out = []
    for counts in resample_counts(len(classes), resamples, seed):
        weights = counts.astype(np.float64)
        parts = []
        for numerators, denominators in sums:
            # einsum's own loop, not a threaded BLAS product: as fast for these skinny shapes, and steady on a busy
            # machine (a BLAS product of them took 8 to 440 ms among other jobs' threads, einsum 2 ms).
            num, den = np.einsum("bc,cm->bm", weights, numerators), np.einsum("bc,cm->bm", weights, denominators)
            parts.append(np.divide(num, den, out=np.zeros_like(num), where=den > 0))  # 0.0 where none counted
        out.append(np.concatenate(parts, axis=1))
    return np.concatenate(out)


def resample_counts(n_classes: int, resamples: int = RESAMPLES, seed: int = SEED):
    """Blocks of (resamples, n_classes) int64: how often each class is drawn when n_classes are drawn with
    replacement, one row per resample (each row sums to n_classes)."""
    rng = np.random.default_rng(seed)
    for start in range(0, resamples, BLOCK):
        rows = min(BLOCK, resamples - start)
        drawn = rng.integers(0, n_classes, size=(rows, n_classes))
        flat = (drawn + n_classes * np.arange(rows)[:, None]).ravel()  # row r's classes counted in slots r*C..
        yield np.bincount(flat, minlength=rows * n_classes).reshape(rows, n_classes)


def percentile_interval(stats: np.ndarray, level: float = LEVEL) -> np.ndarray:
    """(metrics, 2): the (1 - level) / 2 and (1 + level) / 2 quantiles of each column of ``stats``."""
    return np.quantile(stats, [(1 - level) / 2, (1 + level) / 2], axis=0).T


def _class_sums(inverse: np.ndarray, n_classes: int, per_query: np.ndarray) -> np.ndarray:
    """(n_classes, columns): per_query's rows summed per class (``inverse``: each query's class index)."""
    return np.stack([np.bincount(inverse, weights=column, minlength=n_classes) for column in per_query.T], axis=1)
