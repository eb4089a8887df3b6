"""The values of each query, in query order, whatever path ranked them: by hand, and against a slow reference."""

import numpy as np
import pytest
import torch

from dmlbench.retrieval.metrics import per_query_values, retrieval_metrics


def slow_values(query, qlabels, gallery=None, glabels=None):
    """Per query, from its full ranked list (stable argsort, itself left out in self mode): (first, has, AP@R,
    R-Precision) with ``first`` the number of non-relevant items before its best relevant one."""
    self_mode = gallery is None
    if self_mode:
        gallery, glabels = query, qlabels
    sims = np.asarray(query, np.float32) @ np.asarray(gallery, np.float32).T
    out = []
    for i in range(len(query)):
        keep = [j for j in range(len(gallery)) if not (self_mode and j == i)]
        order = [keep[j] for j in np.argsort(-sims[i, keep], kind="stable")]
        relevant = [int(glabels[j]) == int(qlabels[i]) for j in order]
        r = sum(relevant)
        if not r:
            out.append((None, False, 0.0, 0.0))
            continue
        precisions = [sum(relevant[:p]) / p for p in range(1, r + 1) if relevant[p - 1]]
        out.append((relevant.index(True), True, sum(precisions) / r, sum(relevant[:r]) / r))
    return out


def assert_matches(values, expected, max_k):
    assert values.has.tolist() == [e[1] for e in expected]
    for i, (first, has, ap, rp) in enumerate(expected):
        if has and first < max_k:  # exact below max K; beyond, only "not a hit" matters
            assert int(values.first[i]) == first, i
        elif has:
            assert int(values.first[i]) >= max_k, i
        assert float(values.ap[i]) == pytest.approx(ap, rel=0, abs=1e-12), i  # float64 vs Python floats
        assert float(values.rp[i]) == pytest.approx(rp, rel=0, abs=1e-12), i


def test_hand_computed_points_on_a_circle_in_query_order():
    # Angles 0, 10, 30, 100 degrees; labels a a b a (tests/test_retrieval.py works the lists out):
    # q0, q1: best relevant first, AP 0.5, RP 0.5; q2: no relevant item; q3: one b before its a, AP 0.25, RP 0.5.
    angles = np.radians([0, 10, 30, 100])
    emb = torch.nn.functional.normalize(torch.tensor(np.stack([np.cos(angles), np.sin(angles)], 1)).float(), dim=1)
    labels = torch.tensor([0, 0, 1, 0])
    for chunk_size in (1, 3):  # 1: per chunk of queries (class a outgrows it); 3: symmetric blocks by class
        values = per_query_values(emb, labels, ks=(1, 2), chunk_size=chunk_size)
        assert values.first[[0, 1, 3]].tolist() == [0, 0, 1]
        assert values.has.tolist() == [True, True, False, True]
        assert values.ap.tolist() == [0.5, 0.5, 0.0, 0.25] and values.rp.tolist() == [0.5, 0.5, 0.0, 0.5]
        assert values.metrics() == retrieval_metrics(emb, labels, ks=(1, 2), chunk_size=chunk_size)


@pytest.mark.parametrize("chunk_size", [3, 8, 1000])
def test_self_mode_values_match_the_slow_reference(chunk_size):
    gen = torch.Generator().manual_seed(5)
    emb = torch.nn.functional.normalize(torch.randn(60, 6, generator=gen), dim=1)
    labels = torch.randint(0, 9, (60,), generator=gen)  # shuffled classes: the block path regroups the rows
    values = per_query_values(emb, labels, ks=(1, 4), chunk_size=chunk_size)
    assert torch.equal(values.labels, labels)
    assert_matches(values, slow_values(emb, labels), 4)


def test_query_gallery_values_match_the_slow_reference():
    gen = torch.Generator().manual_seed(6)
    query, gallery = (torch.nn.functional.normalize(torch.randn(n, 5, generator=gen), dim=1) for n in (23, 41))
    qlabels, glabels = torch.randint(0, 8, (23,), generator=gen), torch.randint(0, 7, (41,), generator=gen)
    values = per_query_values(query, qlabels, gallery, glabels, ks=(1, 2), chunk_size=4)
    assert_matches(values, slow_values(query, qlabels, gallery, glabels), 2)
