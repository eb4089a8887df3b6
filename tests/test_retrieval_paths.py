"""The two self-retrieval paths (symmetric class-grouped blocks, and query chunks as a fallback) agree."""

import pytest
import torch

from dmlbench.retrieval import retrieval_metrics
from dmlbench.retrieval_ranks import _class_tiles, self_ranks


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


def test_a_class_larger_than_a_block_falls_back_to_query_chunks():
    emb, labels = integer_data(0, 30, 4, 2)
    assert self_ranks(emb, labels, 8, 5) is None
    assert self_ranks(emb, labels, 30, 5) is not None


def test_many_blocks_give_the_same_metrics_as_one_block_and_as_query_chunks():
    emb, labels = integer_data(1, 150, 3, 50)  # classes of about 3: many small diagonal blocks
    ks = (1, 5, 20, 149)
    many = retrieval_metrics(emb, labels, ks=ks, chunk_size=2)
    one = retrieval_metrics(emb, labels, ks=ks, chunk_size=150)
    labels_big = labels.clone()
    labels_big[:40] = 7  # one class of 40+ items outgrows the blocks of chunk_size 2: the fallback path
    assert many == pytest.approx(one, rel=0, abs=1e-12)
    fallback = retrieval_metrics(emb, labels_big, ks=ks, chunk_size=2)
    assert fallback == pytest.approx(retrieval_metrics(emb, labels_big, ks=ks, chunk_size=150), rel=0, abs=1e-12)


def test_label_dtypes_may_differ_between_query_and_gallery():
    emb, labels = integer_data(2, 40, 3, 6)
    a = retrieval_metrics(emb[:10], labels[:10], emb[10:], labels[10:], ks=(1, 5))
    b = retrieval_metrics(emb[:10], labels[:10].int(), emb[10:], labels[10:].to(torch.int16), ks=(1, 5))
    assert a == b
