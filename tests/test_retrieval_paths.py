"""The two self-retrieval paths (symmetric class-grouped blocks, and query chunks as a fallback) agree."""

import pytest
import torch

from dmlbench.retrieval.metrics import retrieval_metrics
from dmlbench.retrieval import ranks as retrieval_ranks
from dmlbench.retrieval.ranks import _class_tiles, self_ranks


def integer_data(seed, n, dim, classes):
    # Integer entries keep every dot product exact, so any two paths must agree to the last bit.
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(-2, 3, (n, dim), generator=gen).float(), torch.randint(0, classes, (n,), generator=gen)


def test_blocks_hold_whole_classes_and_keep_index_order_inside():
    labels = torch.tensor([3, 1, 3, 2, 1, 1, 0, 2, 3, 0])
    spans, perm, largest = _class_tiles(labels, 4)
    assert largest == 3 and spans == [(0, 2), (2, 5), (5, 7), (7, 10)]
    for a, b in spans:
        block = perm[a:b]
        assert torch.equal(block, block.sort().values)
        # No class is split between two blocks.
        assert not set(labels[block].tolist()) & set(labels[perm[b:]].tolist())
    assert sorted(perm.tolist()) == list(range(10))


def test_a_class_larger_than_a_block_or_the_state_budget_falls_back_to_query_chunks():
    emb, labels = integer_data(0, 30, 4, 2)  # two classes of about 15
    assert self_ranks(emb, labels, 8, 5, max_class=30) is None
    assert self_ranks(emb, labels, 30, 5, max_class=10) is None
    assert self_ranks(emb, labels, 30, 5, max_class=30) is not None


def test_many_blocks_give_the_same_metrics_as_one_block_and_as_query_chunks():
    emb, _ = integer_data(1, 150, 3, 1)
    labels = torch.randperm(150, generator=torch.Generator().manual_seed(1)) % 50  # 50 classes of 3, shuffled
    ks = (1, 5, 20, 149)
    assert self_ranks(emb, labels, 17, max(ks), max_class=3) is not None  # what chunk_size=2 uses: 10 blocks
    many = retrieval_metrics(emb, labels, ks=ks, chunk_size=2)
    # Exact similarities (integer data), so every path ranks alike; the metrics are ratios of counts in float64.
    assert many == pytest.approx(retrieval_metrics(emb, labels, ks=ks, chunk_size=150), rel=0, abs=1e-12)
    labels[:40] = 7  # a class of 40+ outgrows the blocks of chunk_size 5: the query-chunk path
    fallback = retrieval_metrics(emb, labels, ks=ks, chunk_size=5)
    assert fallback == pytest.approx(retrieval_metrics(emb, labels, ks=ks, chunk_size=150), rel=0, abs=1e-12)


def test_label_dtypes_may_differ_between_query_and_gallery():
    emb, labels = integer_data(2, 40, 3, 6)
    a = retrieval_metrics(emb[:10], labels[:10], emb[10:], labels[10:], ks=(1, 5))
    b = retrieval_metrics(emb[:10], labels[:10].int(), emb[10:], labels[10:].to(torch.int16), ks=(1, 5))
    assert a == b


@pytest.mark.parametrize("segment, first_slice", [(1, 1), (2, 3), (3, 7), (5, 2), (32, 512)])
def test_segment_and_slice_sizes_do_not_change_the_metrics(monkeypatch, segment, first_slice):
    emb, labels = integer_data(3, 90, 3, 20)
    split = (emb[:30], labels[:30], emb[30:], labels[30:])
    expected_self = retrieval_metrics(emb, labels, ks=(1, 4, 30, 89), chunk_size=1000)
    expected_split = retrieval_metrics(*split, ks=(1, 4, 60), chunk_size=1000)
    monkeypatch.setattr(retrieval_ranks, "SEGMENT", segment)
    monkeypatch.setattr(retrieval_ranks, "FIRST_SLICE", first_slice)
    monkeypatch.setattr(retrieval_ranks, "COMPARE_BUDGET", 64)  # several comparison steps per block
    for chunk_size in (4, 1000):  # exact integer similarities: equal to float64's rounding of the ratios
        self_mode = retrieval_metrics(emb, labels, ks=(1, 4, 30, 89), chunk_size=chunk_size)
        assert self_mode == pytest.approx(expected_self, rel=0, abs=1e-12)
        split_mode = retrieval_metrics(*split, ks=(1, 4, 60), chunk_size=chunk_size)
        assert split_mode == pytest.approx(expected_split, rel=0, abs=1e-12)
