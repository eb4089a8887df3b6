import math

import pytest
import torch

from dmlbench.losses.soft_batch_hard import floored_distances, soft_batch_hard_triplet


def softplus(x: float) -> float:
    return math.log(1 + math.exp(x))


def reference(embeddings, labels):
    """Slow and obvious: per anchor, python loops over the batch, float64, distances floored at 1e-6."""
    rows, labels = embeddings.double().tolist(), labels.tolist()

    def d(i, j):
        return max(math.dist(rows[i], rows[j]), 1e-6)

    losses = []
    for a in range(len(rows)):
        positives = [d(a, p) for p in range(len(rows)) if labels[p] == labels[a] and p != a]
        negatives = [d(a, n) for n in range(len(rows)) if labels[n] != labels[a]]
        if not negatives:
            losses.append(0.0)
            continue
        losses.append(softplus(max(positives, default=0.0) - min(negatives)))
    return sum(losses) / len(losses)


def random_batch(dtype, seed, scale=1.0, batch=12, dim=5, classes=4):
    gen = torch.Generator().manual_seed(seed)
    embeddings = (torch.randn(batch, dim, generator=gen, dtype=torch.float64) * scale).to(dtype)
    labels = torch.randint(0, classes, (batch,), generator=gen)
    return embeddings, labels


def test_hand_computed_six_samples():
    # Points on a line, class 0 at 0, 1, 3 and class 1 at 4, 6, 10. Per anchor, farthest positive - nearest
    # negative: x=0: 3 - 4; x=1: 2 - 3; x=3: 3 - 1; x=4: 6 - 1; x=6: 4 - 3; x=10: 6 - 7.
    embeddings = torch.tensor([[0.0], [1.0], [3.0], [4.0], [6.0], [10.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    expected = sum(softplus(m) for m in (-1, -1, 2, 5, 1, -1)) / 6
    # float64, integer distances (exact): the softplus and mean round at 1e-16, far below 1e-12
    assert soft_batch_hard_triplet(embeddings, labels).item() == pytest.approx(expected, rel=1e-12)
    assert reference(embeddings, labels) == pytest.approx(expected, rel=1e-12)


# float64: a few roundings of 1e-16 per distance; and F.softplus returns x itself above 20, short of log(1 + e^x)
# by e^-x < 2.1e-9, while such a term adds >= 20 to the sum: <= 1.03e-10 relative (one anchor of the scale-30
# batches is at 22.9: 1.9e-13). 2e-10 bounds both.
# float32: distances of 5-d points (5 squares, a sqrt) round at ~3e-7 relative; the softplus's slope <= 1 carries
# that into the loss, whose terms are of the distances' order: ~1e-6 relative at most, 1e-5 on any vector width.
# float16 / bfloat16: the loss computes in float32 and the reference reads the same rounded inputs: as float32.
@pytest.mark.parametrize(("dtype", "rel"), [(torch.float64, 2e-10), (torch.float32, 1e-5), (torch.float16, 1e-5),
                                            (torch.bfloat16, 1e-5)])
@pytest.mark.parametrize("scale", [0.1, 1.0, 30.0])
def test_matches_the_slow_reference(dtype, rel, scale):
    # Half-precision input is computed in float32: the reference reads the same rounded numbers.
    for seed in range(3):
        embeddings, labels = random_batch(dtype, seed, scale)
        loss = soft_batch_hard_triplet(embeddings, labels)
        assert torch.isfinite(loss)
        assert loss.item() == pytest.approx(reference(embeddings, labels), rel=rel)


def test_anchors_without_positive_or_negative_follow_the_seeds_masks():
    # Sample 2 has no positive (d_pos = 0, it still counts); with a single class nobody has a negative (adds 0).
    embeddings = torch.tensor([[0.0], [2.0], [5.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])
    expected = (softplus(2 - 5) + softplus(2 - 3) + softplus(0 - 3)) / 3
    # float64, integer distances (exact): the softplus and mean round at 1e-16, far below 1e-12
    assert soft_batch_hard_triplet(embeddings, labels).item() == pytest.approx(expected, rel=1e-12)
    assert soft_batch_hard_triplet(embeddings, torch.tensor([1, 1, 1])).item() == 0.0


# pml computes the loss by another route (its own distances, miner and reducer): float32's roundings of a loss of
# order 1 stay below 1e-5; float64's below 1e-12. Another miner or margin moves it by percents.
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_matches_pytorch_metric_learning(dtype, tol):
    pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.miners import BatchHardMiner

    # pml's batch-hard miner + its smooth (softplus) triplet loss with margin 0 is the seed's loss, on raw
    # (unnormalised) Euclidean distances; every anchor has a positive and a negative, so both average over all.
    distance = LpDistance(normalize_embeddings=False, p=2, power=1)
    miner = BatchHardMiner(distance=distance)
    theirs = pml_losses.TripletMarginLoss(margin=0.0, smooth_loss=True, distance=distance)
    for seed in range(3):
        gen = torch.Generator().manual_seed(seed)
        embeddings = torch.randn(16, 8, generator=gen, dtype=dtype) * 2
        labels = torch.arange(4).repeat_interleave(4)[torch.randperm(16, generator=gen)]
        expected = theirs(embeddings, labels, miner(embeddings, labels)).item()
        assert soft_batch_hard_triplet(embeddings, labels).item() == pytest.approx(expected, rel=tol, abs=tol)


def test_coinciding_embeddings_give_finite_gradients():
    # The seed's note: d = |a - b| has an infinite slope at 0. Two equal positives and two equal negatives.
    embeddings = torch.tensor([[0.3, 0.4], [0.3, 0.4], [1.0, 0.0], [1.0, 0.0]], requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1])
    soft_batch_hard_triplet(embeddings, labels).backward()
    assert torch.isfinite(embeddings.grad).all()
    torch.manual_seed(0)
    x = torch.randn(3, 4, requires_grad=True)
    same = torch.cat([x, x])  # every sample coincides with one of another class
    soft_batch_hard_triplet(same, torch.tensor([0, 1, 2, 1, 2, 0])).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_distances_are_floored_with_zero_slope_below_the_floor():
    embeddings = torch.tensor([[1.0, 2.0], [1.0, 2.0], [4.0, 6.0]], dtype=torch.float64, requires_grad=True)
    dist = floored_distances(embeddings)
    # float64: sqrt(1e-12) rounds once (1e-16 relative); sqrt(9 + 16) is exactly 5
    assert dist[0, 1].item() == pytest.approx(1e-6, rel=1e-12) and dist[0, 2].item() == 5.0
    dist[0, 1].backward()
    assert torch.equal(embeddings.grad, torch.zeros_like(embeddings))


def test_gradients_match_finite_differences():
    embeddings, labels = random_batch(torch.float64, seed=4, batch=8, dim=3, classes=3)
    embeddings.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda e: soft_batch_hard_triplet(e, labels), (embeddings,))
