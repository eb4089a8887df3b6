"""Hamming retrieval over the signs of the embeddings, against an explicit XOR-and-count reference."""

import numpy as np
import pytest
import torch

from dmlbench.errors import DmlbenchError
from dmlbench.retrieval.metrics import retrieval_metrics
from retrieval_reference import metrics_from_ranked_relevance


def hamming_reference(query, qlabels, gallery=None, glabels=None, ks=(1, 2, 4, 8)):
    """Slow and obvious: bits = x >= 0, distance = popcount(XOR), Python's stable sort, explicit loops."""
    self_mode = gallery is None
    if self_mode:
        gallery, glabels = query, qlabels
    qbits, gbits = np.asarray(query) >= 0, np.asarray(gallery) >= 0
    qlabels, glabels = np.asarray(qlabels).tolist(), np.asarray(glabels).tolist()
    ranked = []
    for i in range(len(qbits)):
        distance = {j: int(np.count_nonzero(qbits[i] ^ gbits[j])) for j in range(len(gbits))
                    if not (self_mode and j == i)}
        order = sorted(distance, key=distance.get)  # stable: equal distances keep ascending index
        ranked.append([glabels[j] == qlabels[i] for j in order])
    return metrics_from_ranked_relevance(ranked, ks)


def assert_same(ours, theirs):
    assert ours.keys() == theirs.keys()
    for key in ours:
        # Signs and bit counts are exact on any CPU, so both rank alike; the counts are divided in float64.
        assert ours[key] == pytest.approx(theirs[key], rel=0, abs=1e-12), key


def random_data(seed, n, dim, classes):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=gen), torch.randint(0, classes, (n,), generator=gen)


def test_hand_computed_codes_with_a_zero_and_a_tie():
    # Codes (0 counts as +): x0 +++, x1 +-+, x2 --+, x3 ++-; labels a a b a.
    # Distances: d01=1 d02=2 d03=1 d12=1 d13=2 d23=3.
    # q0: 1(a,1) 3(a,1) 2(b,2) -> hit@1; R=2: [a, a] -> AP 1, RP 1
    # q1: 0(a,1) 2(b,1) 3(a,2) -> the 0/2 tie goes to index 0: hit@1; R=2: [a, b] -> AP 0.5, RP 0.5
    # q2 (b): no relevant item -> miss, left out of MAP@R
    # q3: 0(a,1) 1(a,2) 2(b,3) -> hit@1; R=2: [a, a] -> AP 1, RP 1
    emb = torch.tensor([[1.0, 1.0, 1.0], [0.0, -1.0, 2.0], [-1.0, -1.0, 3.0], [1.0, 1.0, -0.5]])
    labels = torch.tensor([0, 0, 1, 0])
    expected = {"recall@1": 3 / 4, "recall@2": 3 / 4, "map@r": 2.5 / 3, "r_precision": 2.5 / 3}
    for chunk_size in (1, 2, 4):
        m = retrieval_metrics(emb, labels, ks=(1, 2), chunk_size=chunk_size, similarity="hamming")
        assert m == pytest.approx(expected, rel=0, abs=1e-12)  # ratios of counts: float64 rounding only


def test_the_query_is_excluded_even_when_every_other_item_is_farther_than_zero():
    # The seed set the self-similarity to 0, which outranks an all-negative list; here q0's neighbours
    # 1 and 2 are both at dot product -2 (distance 2), tied, so index 1 (same class) comes first.
    emb = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [-1.0, -1.0]])
    m = retrieval_metrics(emb, torch.tensor([0, 0, 1]), ks=(1,), similarity="hamming")
    # q0 -> 1 hit; q1 -> 2 (distance 0, other class) miss; q2 has no relevant item.
    assert m == {"recall@1": 1 / 3, "map@r": 0.5, "r_precision": 0.5}


@pytest.mark.parametrize("chunk_size", [1, 5, 16, 1000])
def test_self_mode_matches_reference(chunk_size):
    emb, labels = random_data(0, 60, 12, 9)
    ks = (1, 2, 10, 59)
    assert_same(retrieval_metrics(emb, labels, ks=ks, chunk_size=chunk_size, similarity="hamming"),
                hamming_reference(emb, labels, ks=ks))


@pytest.mark.parametrize("seed", range(4))
def test_many_exact_ties_follow_the_index_order(seed):
    # 5 bits for 80 items: at most 6 distinct distances, so nearly every comparison is a tie.
    emb, labels = random_data(10 + seed, 80, 5, 7)
    ks = (1, 3, 8, 40)
    for chunk_size in (3, 11, 80):
        assert_same(retrieval_metrics(emb, labels, ks=ks, chunk_size=chunk_size, similarity="hamming"),
                    hamming_reference(emb, labels, ks=ks))


@pytest.mark.parametrize("chunk_size", [1, 4, 64])
def test_query_gallery_mode_matches_reference(chunk_size):
    q, ql = random_data(1, 25, 6, 6)
    g, gl = random_data(2, 50, 6, 6)
    ks = (1, 5, 50)
    assert_same(retrieval_metrics(q, ql, g, gl, ks=ks, chunk_size=chunk_size, similarity="hamming"),
                hamming_reference(q, ql, g, gl, ks=ks))


def test_scale_does_not_matter_only_signs_do():
    emb, labels = random_data(3, 40, 8, 5)
    scaled = emb * (torch.rand(40, 8, generator=torch.Generator().manual_seed(5)) * 100 + 0.01)
    assert retrieval_metrics(emb, labels, similarity="hamming") == retrieval_metrics(scaled, labels,
                                                                                     similarity="hamming")


def test_unknown_similarity_names_the_choices():
    emb, labels = random_data(4, 10, 4, 3)
    with pytest.raises(DmlbenchError, match=r"unknown similarity 'euclid' \(choices: cosine, hamming\)"):
        retrieval_metrics(emb, labels, similarity="euclid")


def test_a_zero_embedding_is_the_all_plus_one_code():
    # F.normalize leaves an all-zero vector at zero; its signs are all 0, which count as +1.
    emb, labels = random_data(6, 30, 6, 4)
    emb[[2, 11]] = 0.0
    assert_same(retrieval_metrics(emb, labels, ks=(1, 4, 29), chunk_size=7, similarity="hamming"),
                hamming_reference(emb, labels, ks=(1, 4, 29)))
    as_ones = torch.cat([emb[:2], torch.ones(1, 6)])  # query 2, zero, replaced by an all-positive vector
    zero = retrieval_metrics(emb[:3], labels[:3], emb, labels, ks=(1, 30), similarity="hamming")
    assert zero == retrieval_metrics(as_ones, labels[:3], emb, labels, ks=(1, 30), similarity="hamming")
