"""Bootstrap intervals over test classes: the counts are draws of classes with replacement, a resample's value is
the metric of the drawn classes' queries, the intervals cover a known answer at about their rate, and a paired
comparison of a run with itself is exactly 0."""

import numpy as np
import pytest
import torch

from dmlbench.retrieval.intervals import (BLOCK, RESAMPLES, SEED, metric_intervals, paired_differences, resample_counts,
                                          resampled)
from dmlbench.retrieval.per_query import PerQuery


def per_query(labels, hit, ap=None, has=None) -> PerQuery:
    """PerQuery for Recall@1 (``hit``: the best relevant item ranks first) and AP@R values."""
    labels, n = torch.as_tensor(labels), len(labels)
    ap = torch.zeros(n, dtype=torch.float64) if ap is None else torch.as_tensor(ap, dtype=torch.float64)
    has = torch.ones(n, dtype=torch.bool) if has is None else torch.as_tensor(has)
    return PerQuery((1,), labels.long(), torch.where(torch.as_tensor(hit), 0, 3), has, ap, ap.clone())


def test_counts_are_classes_drawn_with_replacement():
    classes = 7
    blocks = list(resample_counts(classes))
    counts = np.concatenate(blocks)
    assert counts.shape == (RESAMPLES, classes) and (counts.sum(axis=1) == classes).all()
    # Slow: draw the first block's classes one resample at a time from the same stream, and count them.
    drawn = np.random.default_rng(SEED).integers(0, classes, size=(BLOCK, classes))
    for row, picks in zip(counts[:BLOCK], drawn):
        assert row.tolist() == [int((picks == c).sum()) for c in range(classes)]
    assert np.array_equal(counts, np.concatenate(list(resample_counts(classes))))  # seeded: the same again


def test_a_resample_is_the_metric_of_the_drawn_classes_queries():
    rng = np.random.default_rng(3)
    labels = np.array([5, 5, 9, 9, 9, 2, 7, 7, 7, 7, 4, 4])  # class ids need not be 0..C-1
    hit, ap = rng.random(12) < 0.5, rng.random(12)
    has = np.array([1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 0], dtype=bool)  # singletons: no relevant item
    values = per_query(labels, hit, ap, has)
    stats = resampled(values.labels, [values.columns()], resamples=20)
    classes = np.unique(labels)  # counts are over the sorted class ids
    for counts, (r1, map_r, _) in zip(np.concatenate(list(resample_counts(len(classes), 20))), stats):
        taken = np.concatenate([np.flatnonzero(labels == c) for c, k in zip(classes, counts) for _ in range(k)])
        # A query without a relevant item is a miss for Recall@1; float64 sums in another order: 1e-12.
        assert r1 == pytest.approx((hit & has)[taken].mean(), rel=0, abs=1e-12)
        kept = taken[has[taken]]
        assert map_r == pytest.approx(ap[kept].mean() if len(kept) else 0.0, rel=0, abs=1e-12)


def clustered_draw(rng, classes: int, p: float) -> PerQuery:
    """One test set of ``classes`` classes of 2-10 queries; each class has its own hit rate (Beta, mean p) and its
    queries hit independently at that rate: queries of a class are correlated, as in retrieval."""
    sizes = rng.integers(2, 11, classes)
    rates = rng.beta(1.2 * p / 0.6, 1.2 * (1 - p) / 0.6, classes)  # Beta(1.2, 0.8) at p = 0.6: strongly clustered
    labels = np.repeat(np.arange(classes), sizes)
    return per_query(labels, rng.random(len(labels)) < rates[labels])


def coverage(values_of, draws: int, p: float) -> float:
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(draws):
        low, high = metric_intervals({"dense": values_of(clustered_draw(rng, 40, p))})["dense"]["recall@1"]
        covered += low <= p <= high
    return covered / draws


def test_class_intervals_cover_the_true_rate_about_95_percent_of_the_time():
    # 400 test sets with a known Recall@1 of 0.6 (the mean class rate; class sizes are independent of the rates).
    # Band: were the coverage exactly 95 %, the share covered would be binomial with sd sqrt(.95 x .05 / 400) =
    # 0.011, and within 3 sd of 0.95, [0.917, 0.983], 99.7 % of the time. (Measured: 0.9625.)
    draws, p = 400, 0.6
    share = coverage(lambda v: v, draws, p)
    assert 0.917 <= share <= 0.983
    # Resampling single queries instead treats correlated queries as independent: its intervals are too narrow
    # and cover far less often than they claim, below the band (measured: 0.7375).
    alone = coverage(lambda v: PerQuery(v.ks, torch.arange(len(v.labels)), v.first, v.has, v.ap, v.rp), draws, p)
    assert alone < 0.917


def test_a_run_against_itself_differs_by_exactly_zero():
    rng = np.random.default_rng(0)
    values = clustered_draw(rng, 30, 0.6)
    for name, (diff, low, high) in paired_differences(values, values).items():
        assert (diff, low, high) == (0.0, 0.0, 0.0), name


def test_paired_interval_is_the_resampled_difference():
    rng = np.random.default_rng(2)
    a = clustered_draw(rng, 30, 0.6)
    b = per_query(a.labels, (a.first == 0) & torch.from_numpy(rng.random(len(a.labels)) < 0.8))  # A minus some hits
    diff, low, high = paired_differences(a, b)["recall@1"]
    stats = resampled(a.labels, [a.columns(), b.columns()])
    expected = np.quantile(stats[:, 0] - stats[:, 3], [0.025, 0.975])
    assert diff == a.metrics()["recall@1"] - b.metrics()["recall@1"] > 0
    assert (low, high) == (expected[0], expected[1]) and 0 < low <= diff <= high


def test_features_share_the_resamples_and_do_not_change_each_other():
    rng = np.random.default_rng(4)
    dense = clustered_draw(rng, 25, 0.6)
    binary = per_query(dense.labels, rng.random(len(dense.labels)) < 0.3)
    both = metric_intervals({"dense": dense, "binary": binary})
    assert both["dense"] == metric_intervals({"dense": dense})["dense"]
    assert both["binary"] == metric_intervals({"binary": binary})["binary"]
    assert set(both["dense"]) == {"recall@1", "map@r", "r_precision"}
