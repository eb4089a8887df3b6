import numpy as np
import pytest
import torch

from dmlbench.errors import DmlbenchError
from dmlbench.retrieval.metrics import queries_without_relevant, retrieval_metrics
from retrieval_reference import metrics_from_ranked_relevance


def ranked_relevance(query, qlabels, gallery=None, glabels=None):
    """Slow and obvious: full similarity matrix, stable argsort, explicit loops; per query, the relevance of
    its gallery items in ranked order (itself left out in self mode)."""
    self_mode = gallery is None
    if self_mode:
        gallery, glabels = query, qlabels
    q, g = np.asarray(query, np.float32), np.asarray(gallery, np.float32)
    qlabels, glabels = np.asarray(qlabels), np.asarray(glabels)
    sims = q @ g.T
    ranked = []
    for i in range(len(q)):
        keep = [j for j in range(len(g)) if not (self_mode and j == i)]
        order = [keep[j] for j in np.argsort(-sims[i, keep], kind="stable")]
        ranked.append([bool(glabels[j] == qlabels[i]) for j in order])
    return ranked


def reference(query, qlabels, gallery=None, glabels=None, ks=(1, 2, 4, 8)):
    return metrics_from_ranked_relevance(ranked_relevance(query, qlabels, gallery, glabels), ks)


def assert_same(ours, theirs):
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert isinstance(ours[key], float), key
        # The same rankings give the same counts; both sides divide and average them in float64 (1e-16 each).
        assert ours[key] == pytest.approx(theirs[key], rel=0, abs=1e-12), key


def normalized(x):
    return torch.nn.functional.normalize(torch.as_tensor(x, dtype=torch.float32), dim=1)


def random_data(seed, n, dim, classes):
    """Multiples of 1/16 in [-1, 1]: every dot product is a multiple of 1/256 below 16 in size, exact in float32
    in any summation order, with or without FMA, so ours and the reference rank the same values on any CPU (ties
    broken by index in both). Random unit vectors left pairs of items within float32 rounding of each other
    (2.6e-7 apart in the 200-point set), whose order then depends on the kernels."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(-16, 17, (n, dim), generator=gen) / 16, torch.randint(0, classes, (n,), generator=gen)


def test_hand_computed_points_on_a_circle():
    # Angles 0, 10, 30, 100 degrees; labels a a b a. Neighbours by cosine:
    # q0: 1(a) 2(b) 3(a) -> R=2: top2 = [a, b] -> AP = (1/1)/2 = 0.5, RP = 0.5
    # q1: 0(a) 2(b) 3(a) -> same: AP 0.5, RP 0.5
    # q2 (b): no relevant -> miss for recall, excluded from MAP@R
    # q3: 2(b) 1(a) 0(a) -> R=2: top2 = [b, a] -> AP = (1/2)/2 = 0.25, RP = 0.5
    angles = np.radians([0, 10, 30, 100])
    emb = normalized(np.stack([np.cos(angles), np.sin(angles)], axis=1))
    labels = torch.tensor([0, 0, 1, 0])
    m = retrieval_metrics(emb, labels, ks=(1, 2), chunk_size=3)
    # Ratios of small counts, in float64: approx's default 1e-6 relative is far above their rounding (1e-16); the
    # neighbours' cosines differ by >= 0.1, so no rounding can reorder them.
    assert m == pytest.approx({"recall@1": 2 / 4, "recall@2": 3 / 4, "map@r": 1.25 / 3, "r_precision": 0.5})


def test_hand_computed_ties_break_by_lower_index():
    # Rows 0-2 identical, row 3 orthogonal; labels a b a a. Ties resolved by ascending index:
    # q0: 1(b) 2(a) | 3(a) -> recall@1 miss, @2 hit; R=2: [b, a] -> AP = (1/2)/2 = 0.25, RP 0.5
    # q1 (b): no relevant -> miss, excluded
    # q2: 0(a) 1(b) | 3(a) -> hit at 1; R=2: [a, b] -> AP = 0.5, RP 0.5
    # q3: 0(a) 1(b) 2(a) all tied at 0 -> hit at 1; R=2: [a, b] -> AP = 0.5, RP 0.5
    emb = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1, 0, 0])
    for chunk_size in (1, 3, 4):
        m = retrieval_metrics(emb, labels, ks=(1, 2), chunk_size=chunk_size)
        # Exact similarities (0 and 1); ratios of counts in float64, far inside approx's default 1e-6.
        assert m == pytest.approx({"recall@1": 2 / 4, "recall@2": 3 / 4, "map@r": 1.25 / 3,
                                   "r_precision": 0.5})


@pytest.mark.parametrize("chunk_size", [1, 7, 50, 1000])
def test_self_mode_matches_reference_on_random_data(chunk_size):
    emb, labels = random_data(0, 50, 8, 6)
    assert_same(retrieval_metrics(emb, labels, chunk_size=chunk_size), reference(emb, labels))


def test_self_mode_with_large_r_matches_reference():
    emb, labels = random_data(5, 200, 16, 3)  # R around 66 per query
    ks = (1, 5, 50, 199)
    assert_same(retrieval_metrics(emb, labels, ks=ks, chunk_size=37), reference(emb, labels, ks=ks))


@pytest.mark.parametrize("chunk_size", [1, 3, 4, 64])
def test_query_gallery_mode_matches_reference(chunk_size):
    q, ql = random_data(1, 20, 5, 8)
    g, gl = random_data(2, 40, 5, 8)
    ks = (1, 10, 40)
    assert_same(retrieval_metrics(q, ql, g, gl, ks=ks, chunk_size=chunk_size), reference(q, ql, g, gl, ks))


@pytest.mark.parametrize("seed", range(5))
def test_heavy_ties_follow_the_stable_order(seed):
    # Unit vectors from {-1/2, 1/2}^4: many exact duplicates and equal similarities, like binary codes.
    gen = torch.Generator().manual_seed(seed)
    emb = (torch.randint(0, 2, (60, 4), generator=gen) * 2 - 1).float() / 2.0
    labels = torch.randint(0, 5, (60,), generator=gen)
    assert_same(retrieval_metrics(emb, labels, chunk_size=13), reference(emb, labels))
    q, ql = emb[:15], labels[:15]
    assert_same(retrieval_metrics(q, ql, emb[15:], labels[15:], chunk_size=4),
                reference(q, ql, emb[15:], labels[15:]))


@pytest.mark.parametrize("seed", range(3))
def test_integer_embeddings_with_few_distinct_similarities(seed):
    # Integer entries keep every dot product exact, so ties are real ties in both implementations.
    gen = torch.Generator().manual_seed(seed)
    emb = torch.randint(0, 3, (45, 3), generator=gen).float()
    labels = torch.randint(0, 4, (45,), generator=gen)
    ks = (1, 3, 20, 44)
    for chunk_size in (1, 8, 45):
        assert_same(retrieval_metrics(emb, labels, ks=ks, chunk_size=chunk_size),
                    reference(emb, labels, ks=ks))


def test_queries_without_relevant_items_are_misses_and_left_out_of_map():
    emb, labels = random_data(3, 30, 6, 4)
    labels[:5] = torch.arange(100, 105)  # five singleton classes
    assert_same(retrieval_metrics(emb, labels, chunk_size=4), reference(emb, labels))
    q, ql = random_data(4, 12, 6, 4)
    ql[::3] = 99  # a label the gallery does not have
    assert_same(retrieval_metrics(q, ql, emb, labels, chunk_size=5), reference(q, ql, emb, labels))


def test_no_query_has_a_relevant_item():
    emb, _ = random_data(6, 10, 4, 1)
    m = retrieval_metrics(emb, torch.arange(10), ks=(1, 9))
    assert m == {"recall@1": 0.0, "recall@9": 0.0, "map@r": 0.0, "r_precision": 0.0}


def test_duplicate_of_the_query_is_kept_but_the_query_itself_is_not():
    emb = normalized([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    m = retrieval_metrics(emb, torch.tensor([0, 0, 1]), ks=(1,))
    # Rows 0 and 1 find each other (identical vectors); row 2 has no relevant item.
    assert m == {"recall@1": 2 / 3, "map@r": 1.0, "r_precision": 1.0}


def test_k_too_large_names_k_and_gallery_size():
    emb, labels = normalized(torch.randn(5, 3)), torch.arange(5)
    with pytest.raises(DmlbenchError, match=r"Recall@8 asked, but the gallery has 5 images, so each query "
                                            r"searches only 4 besides the query itself: lower the K list"):
        retrieval_metrics(emb, labels, ks=(1, 8))
    retrieval_metrics(emb, labels, ks=(1, 4))  # K = gallery size - 1 is fine in self mode
    with pytest.raises(DmlbenchError, match=r"Recall@6 asked, but the gallery has 5 images.*larger test set"):
        retrieval_metrics(emb[:2], labels[:2], emb, labels, ks=(6,))


def test_shape_mismatches_are_refused():
    emb, labels = normalized(torch.randn(5, 3)), torch.arange(5)
    with pytest.raises(DmlbenchError, match=r"query labels of shape \(4,\) for 5 query embeddings"):
        retrieval_metrics(emb, labels[:4], ks=(1,))
    with pytest.raises(DmlbenchError, match=r"gallery labels of shape \(6,\) for 5 gallery embeddings"):
        retrieval_metrics(emb, labels, emb, torch.arange(6), ks=(1,))
    with pytest.raises(DmlbenchError, match=r"\(5, 3\).*\(5, 2\).*same dimension"):
        retrieval_metrics(emb, labels, normalized(torch.randn(5, 2)), labels, ks=(1,))


def test_queries_without_relevant_items_are_counted_as_the_brute_force_finds_them():
    emb, labels = random_data(7, 40, 6, 8)
    labels[:6] = torch.tensor([100, 101, 102, 103, 104, 104])  # four singleton classes and a pair
    expected = sum(not any(r) for r in ranked_relevance(emb, labels))
    assert expected >= 4 and queries_without_relevant(labels) == expected
    q, ql = random_data(8, 15, 6, 8)
    ql[::4] = 99  # query ids the gallery lacks
    expected = sum(not any(r) for r in ranked_relevance(q, ql, emb, labels))
    assert expected >= 4 and queries_without_relevant(ql, labels) == expected
    assert queries_without_relevant(ql.int(), labels.to(torch.int16)) == expected  # label dtypes may differ


def test_a_zero_embedding_ranks_as_similarity_zero_to_everything():
    # F.normalize leaves an all-zero vector at zero: finite, so it ranks, at similarity 0 to every item. As a
    # query it ties everything, so its list is gallery-index order; elsewhere it sits between the positive and
    # the negative similarities.
    emb, labels = random_data(9, 30, 5, 4)
    emb[[0, 17]] = 0.0
    for chunk_size in (1, 7, 30):
        assert_same(retrieval_metrics(emb, labels, ks=(1, 3, 29), chunk_size=chunk_size),
                    reference(emb, labels, ks=(1, 3, 29)))
        assert_same(retrieval_metrics(emb[:10], labels[:10], emb[10:], labels[10:], ks=(1, 20),
                                      chunk_size=chunk_size), reference(emb[:10], labels[:10], emb[10:],
                                                                        labels[10:], ks=(1, 20)))
    # Hand-checked: query 0 (zero) sees items 1, 2, 3 tied at 0 and takes item 1 first, of the other class.
    emb = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    m = retrieval_metrics(emb, torch.tensor([0, 1, 0, 1]), ks=(1,))
    # q0 -> 1 (b) miss; q1 -> 3 (b) hit; q2 -> 0 (a, the tie at 0 of items 0 and 1 goes to index 0) hit;
    # q3 -> 1 (b) hit.
    assert m["recall@1"] == 3 / 4


def test_fewer_than_two_classes_are_refused():
    emb, _ = random_data(10, 8, 4, 1)
    one_class = torch.zeros(8, dtype=torch.long)
    with pytest.raises(DmlbenchError, match=r"the test split has too few classes: found 1 class\(es\), need >= 2 "
                                            r"for retrieval to mean anything; put more classes"):
        retrieval_metrics(emb, one_class, ks=(1,))
    with pytest.raises(DmlbenchError, match=r"the gallery has too few classes: found 1 class\(es\), need >= 2"):
        retrieval_metrics(emb[:2], torch.tensor([0, 1]), emb, one_class, ks=(1,))
    # A one-class query set against a gallery of several classes still means something.
    m = retrieval_metrics(emb[:2], torch.tensor([0, 0]), emb, torch.tensor([0, 1] * 4), ks=(1,))
    assert set(m) == {"recall@1", "map@r", "r_precision"}
