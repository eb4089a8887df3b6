import math

import pytest
import torch

from dmlbench.losses.hap2s import hap2s_loss


def softplus(x: float) -> float:
    return math.log(1 + math.exp(x))


def set_distance(distances, power):
    """sum d w / (sum w + 1e-6), w = min(d + 1, 100)^power; 0 for an empty set."""
    weights = [min(d + 1, 100) ** power for d in distances]
    return sum(d * w for d, w in zip(distances, weights)) / (sum(weights) + 1e-6)


def reference(embeddings, labels, positive_power=10.0, negative_power=-20.0):
    """Slow and obvious: per anchor, python loops over the batch, float64, distances floored at 1e-6."""
    rows, labels = embeddings.double().tolist(), labels.tolist()
    losses = []
    for a in range(len(rows)):
        positives = [max(math.dist(rows[a], rows[p]), 1e-6) for p in range(len(rows))
                     if labels[p] == labels[a] and p != a]
        negatives = [max(math.dist(rows[a], rows[n]), 1e-6) for n in range(len(rows)) if labels[n] != labels[a]]
        losses.append(softplus(set_distance(positives, positive_power) - set_distance(negatives, negative_power)))
    return sum(losses) / len(losses)


def test_hand_computed_six_samples():
    # Points on a line, class 0 at 0, 0.1, 0.3 and class 1 at 0.4, 0.6, 1.0; each anchor's distances read off:
    # anchor: (positives), (negatives)
    by_hand = [((0.1, 0.3), (0.4, 0.6, 1.0)), ((0.1, 0.2), (0.3, 0.5, 0.9)), ((0.3, 0.2), (0.1, 0.3, 0.7)),
               ((0.2, 0.6), (0.4, 0.3, 0.1)), ((0.2, 0.4), (0.6, 0.5, 0.3)), ((0.6, 0.4), (1.0, 0.9, 0.7))]
    # e.g. anchor 0: P = (0.1 x 1.1^10 + 0.3 x 1.3^10) / (1.1^10 + 1.3^10 + 1e-6) = 4.3951 / 16.380 = 0.26833
    # (the farther positive weighs 5.3 x more); N = (0.4 x 1.4^-20 + 0.6 x 1.6^-20 + 1.0 x 2^-20) / (1.4^-20 +
    # 1.6^-20 + 2^-20 + 1e-6) = 0.41306 (the nearest negative dominates).
    p0 = (0.1 * 1.1 ** 10 + 0.3 * 1.3 ** 10) / (1.1 ** 10 + 1.3 ** 10 + 1e-6)
    n0 = (0.4 * 1.4 ** -20 + 0.6 * 1.6 ** -20 + 2.0 ** -20) / (1.4 ** -20 + 1.6 ** -20 + 2.0 ** -20 + 1e-6)
    # the 5 printed decimals above (rounding 5e-6)
    assert p0 == pytest.approx(0.26833, abs=1e-5) and n0 == pytest.approx(0.41306, abs=1e-5)
    # python floats, the same formula grouped otherwise (0.1 + 1 for 1.1): float64 rounding, far below 1e-12
    assert set_distance(by_hand[0][0], 10) == pytest.approx(p0, rel=1e-12)
    assert set_distance(by_hand[0][1], -20) == pytest.approx(n0, rel=1e-12)
    expected = sum(softplus(set_distance(pos, 10) - set_distance(neg, -20)) for pos, neg in by_hand) / 6
    embeddings = torch.tensor([[0.0], [0.1], [0.3], [0.4], [0.6], [1.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    # float64: the distances from coordinates differ from the typed ones by rounding (1e-16 relative), which the
    # powers 10 and -20 amplify 20x at most: far below 1e-12
    assert hap2s_loss(embeddings, labels).item() == pytest.approx(expected, rel=1e-12)
    assert reference(embeddings, labels) == pytest.approx(expected, rel=1e-12)


def test_powers_of_one_give_weighted_means_by_hand():
    # p = +1 / -1 on a line: class 0 at 0, 0.1, 0.3 and class 1 at 0.4 (no positive: P = 0).
    embeddings = torch.tensor([[0.0], [0.1], [0.3], [0.4]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 1])
    e = 1e-6
    anchors = [  # (P, N) per anchor, w = d + 1 for positives and 1 / (d + 1) for negatives
        ((0.1 * 1.1 + 0.3 * 1.3) / (2.4 + e), (0.4 / 1.4) / (1 / 1.4 + e)),
        ((0.1 * 1.1 + 0.2 * 1.2) / (2.3 + e), (0.3 / 1.3) / (1 / 1.3 + e)),
        ((0.3 * 1.3 + 0.2 * 1.2) / (2.5 + e), (0.1 / 1.1) / (1 / 1.1 + e)),
        (0.0, (0.4 / 1.4 + 0.3 / 1.3 + 0.1 / 1.1) / (1 / 1.4 + 1 / 1.3 + 1 / 1.1 + e)),
    ]
    expected = sum(softplus(p - n) for p, n in anchors) / 4
    loss = hap2s_loss(embeddings, labels, positive_power=1.0, negative_power=-1.0)
    # float64 against python floats: a few roundings of 1e-16
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert reference(embeddings, labels, 1.0, -1.0) == pytest.approx(expected, rel=1e-12)


def random_batch(dtype, seed, scale=1.0, batch=12, dim=5, classes=4):
    gen = torch.Generator().manual_seed(seed)
    embeddings = (torch.randn(batch, dim, generator=gen, dtype=torch.float64) * scale).to(dtype)
    labels = torch.randint(0, classes, (batch,), generator=gen)
    return embeddings, labels


# float64: roundings of 1e-16, amplified <= 20x by the powers; and F.softplus returns x itself above 20, short of
# log(1 + e^x) by e^-x < 2.1e-9, while such a term adds >= 20 to the sum: <= 1.03e-10 relative. 2e-10 bounds both.
# float32: each distance (5 squares summed, a sqrt) rounds at ~3e-7 relative, which the power -20 turns into ~6e-6
# of a weight; the weighted means and the softplus keep that order: 1e-4 bounds it on any vector width.
# float16 / bfloat16: the loss computes in float32 and the reference reads the same rounded inputs: as float32.
@pytest.mark.parametrize(("dtype", "rel"), [(torch.float64, 2e-10), (torch.float32, 1e-4), (torch.float16, 1e-4),
                                            (torch.bfloat16, 1e-4)])
@pytest.mark.parametrize("scale", [0.1, 1.0, 40.0])  # 40: distances above 99, where min(d + 1, 100) caps
def test_matches_the_slow_reference(dtype, rel, scale):
    # Half-precision input is computed in float32 (weights reach 100^10): the reference reads the same numbers.
    for seed in range(3):
        embeddings, labels = random_batch(dtype, seed, scale)
        loss = hap2s_loss(embeddings, labels)
        assert torch.isfinite(loss)
        assert loss.item() == pytest.approx(reference(embeddings, labels), rel=rel)


def test_the_weight_cap_is_reached_at_large_scale():
    embeddings, labels = random_batch(torch.float64, 0, 40.0)
    assert torch.cdist(embeddings, embeddings).max() > 99


def test_coinciding_embeddings_give_finite_gradients():
    # The seed's note: d = |a - b| has an infinite slope at 0; here two positives and two negatives coincide.
    embeddings = torch.tensor([[0.3, 0.4], [0.3, 0.4], [1.0, 0.0], [1.0, 0.0]], requires_grad=True)
    hap2s_loss(embeddings, torch.tensor([0, 0, 1, 1])).backward()
    assert torch.isfinite(embeddings.grad).all()
    torch.manual_seed(0)
    x = torch.randn(3, 4, requires_grad=True)
    hap2s_loss(torch.cat([x, x]), torch.tensor([0, 1, 2, 1, 2, 0])).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_gradients_match_finite_differences():
    embeddings, labels = random_batch(torch.float64, seed=4, batch=8, dim=3, classes=3)
    embeddings = (embeddings * 0.3).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda e: hap2s_loss(e, labels), (embeddings,))
