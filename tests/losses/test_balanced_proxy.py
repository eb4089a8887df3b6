import math

import pytest
import torch
import torch.nn.functional as F

from dmlbench.losses.balanced_proxy import balanced_proxy_loss, balanced_proxy_terms, sample_anchored_loss
from dmlbench.losses.proxy_anchor import proxy_anchor_loss

ALPHA, DELTA = 32.0, 0.1


def sample_anchored_reference(cosines, labels, alpha=ALPHA):
    """Slow and obvious: per sample -log softmax_c(alpha s(x, p_c))[y], python loops, float64, then the mean."""
    total = 0.0
    for row, label in zip(cosines.tolist(), labels.tolist()):
        logits = [alpha * s for s in row]
        top = max(logits)
        total += top + math.log(sum(math.exp(z - top) for z in logits)) - logits[label]
    return total / len(labels)


def proxy_anchor_reference(cosines, labels, alpha=ALPHA, delta=DELTA):
    """The proxy-anchored half, from its formula (as in tests/losses/test_proxy_anchor.py)."""
    rows, labels = cosines.tolist(), labels.tolist()
    pulls, pushes = [], []
    for p in range(len(rows[0])):
        pos = [r[p] for r, y in zip(rows, labels) if y == p]
        neg = [r[p] for r, y in zip(rows, labels) if y != p]
        if pos:
            pulls.append(math.log(1 + sum(math.exp(-alpha * (s - delta)) for s in pos)))
        pushes.append(math.log(1 + sum(math.exp(alpha * (s + delta)) for s in neg)))
    return sum(pulls) / len(pulls) + sum(pushes) / len(pushes)


def reference(cosines, labels):
    return 0.5 * sample_anchored_reference(cosines, labels) + 0.5 * proxy_anchor_reference(cosines, labels)


def test_hand_computed_six_samples():
    # The batch of test_proxy_anchor.hand_batch: labels 0 0 0 1 1 2, 4 proxies; own cosine 0.1, others -0.1,
    # except s(x0, p0) = 0.1 - ln(2)/32 and s(x5, p3) = -0.1 + ln(3)/32. Proxy-anchored half: 2.879911540583618.
    # Sample-anchored half, q = exp(32 x (-0.1 - 0.1)) = exp(-6.4): -log softmax = log(1 + sum_{c != y}
    # exp(32 (s_c - s_y))). Samples 1-4: 3 others at q each -> log(1 + 3q). Sample 0: its own logit is ln 2 lower,
    # so each other is 2q -> log(1 + 6q). Sample 5: two others at q, proxy 3 at 3q -> log(1 + 5q).
    # Mean: (4 log(1 + 3q) + log(1 + 6q) + log(1 + 5q)) / 6 = 0.00634710035225533.
    # Total: 0.5 x 0.00634710035225533 + 0.5 x 2.879911540583618 = 1.4431293204679367
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    cosines = torch.full((6, 4), -DELTA, dtype=torch.float64)
    cosines[torch.arange(6), labels] = DELTA
    cosines[0, 0] = DELTA - math.log(2) / ALPHA
    cosines[5, 3] = -DELTA + math.log(3) / ALPHA
    q = math.exp(-6.4)
    sample = (4 * math.log(1 + 3 * q) + math.log(1 + 6 * q) + math.log(1 + 5 * q)) / 6
    terms = balanced_proxy_terms(cosines, labels, ALPHA, DELTA)
    # float64 throughout: the loss and the hand formula differ by a few roundings of 1e-16 (1e-12 leaves room).
    assert terms["sample_anchored"].item() == pytest.approx(sample, abs=1e-12)
    assert sample == pytest.approx(0.00634710035225533, abs=1e-15)  # python floats: the printed digits, exactly
    assert terms["proxy_anchor"].item() == pytest.approx(2.879911540583618, abs=1e-12)
    assert terms["loss"].item() == pytest.approx(1.4431293204679367, abs=1e-12)
    assert reference(cosines, labels) == pytest.approx(1.4431293204679367, abs=1e-12)


@pytest.mark.parametrize(("dtype", "rel"), [(torch.float64, 1e-12), (torch.float32, 1e-5), (torch.float16, 2e-2)])
def test_matches_the_slow_reference(dtype, rel):
    # float16: cosines to ~3 digits times alpha = 32, about 1% (training computes the loss in float32). float32:
    # elementwise maths and sums of <= 12 terms, 6e-8 per rounding whatever the vector width: far below 1e-5.
    # float64: the same, at 1e-16 per rounding.
    for seed in range(3):
        gen = torch.Generator().manual_seed(seed)
        cosines = (torch.rand(12, 7, generator=gen, dtype=torch.float64) * 2 - 1).to(dtype)
        labels = torch.randint(0, 5, (12,), generator=gen)
        loss = balanced_proxy_loss(cosines, labels, ALPHA, DELTA)
        assert loss.dtype == dtype and torch.isfinite(loss)
        assert loss.item() == pytest.approx(reference(cosines.double(), labels), rel=rel)


def test_is_the_equal_mean_of_its_two_halves():
    gen = torch.Generator().manual_seed(3)
    cosines = torch.rand(10, 5, generator=gen) * 2 - 1
    labels = torch.randint(0, 5, (10,), generator=gen)
    terms = balanced_proxy_terms(cosines, labels)
    assert torch.equal(terms["proxy_anchor"], proxy_anchor_loss(cosines, labels))
    assert torch.equal(terms["sample_anchored"], sample_anchored_loss(cosines, labels))
    assert torch.equal(terms["loss"], 0.5 * terms["sample_anchored"] + 0.5 * terms["proxy_anchor"])
    assert torch.equal(balanced_proxy_loss(cosines, labels), terms["loss"])


# pml computes each half by another route (its own normalisation, log-sum-exp and reducer): float32's roundings
# of a loss of order 1 stay below 1e-5; float64's below 1e-12. A different definition moves a half by percents.
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_halves_match_pytorch_metric_learning(dtype, tol):
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    gen = torch.Generator().manual_seed(2)
    embeddings = torch.randn(16, 8, generator=gen, dtype=dtype)
    labels = torch.randint(0, 5, (16,), generator=gen)
    proxies = torch.randn(6, 8, generator=gen, dtype=dtype)
    cosines = F.normalize(embeddings, dim=1) @ F.normalize(proxies, dim=1).T
    # NormalizedSoftmaxLoss: its DotProductSimilarity normalises the embeddings, it normalises each column of
    # W (embedding_size x classes, so W = proxies^T), divides by the temperature and its MeanReducer averages the
    # per-sample cross-entropies: mean_x -log softmax(32 s(x, p))[y], our sample-anchored half.
    softmax = pml.NormalizedSoftmaxLoss(num_classes=6, embedding_size=8, temperature=1 / ALPHA)
    softmax.W.data = proxies.T.clone()
    anchor = pml.ProxyAnchorLoss(num_classes=6, embedding_size=8, margin=DELTA, alpha=ALPHA)
    anchor.proxies.data = proxies.clone()
    terms = balanced_proxy_terms(cosines, labels, ALPHA, DELTA)
    theirs_sample, theirs_anchor = softmax(embeddings, labels).item(), anchor(embeddings, labels).item()
    assert terms["sample_anchored"].item() == pytest.approx(theirs_sample, rel=tol, abs=tol)
    assert terms["proxy_anchor"].item() == pytest.approx(theirs_anchor, rel=tol, abs=tol)
    assert terms["loss"].item() == pytest.approx(0.5 * theirs_sample + 0.5 * theirs_anchor, rel=tol, abs=tol)
