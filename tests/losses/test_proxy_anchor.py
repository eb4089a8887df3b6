import math

import pytest
import torch
import torch.nn.functional as F

from dmlbench.losses.proxy_anchor import proxy_anchor_loss

ALPHA, DELTA = 32.0, 0.1


def reference(cosines, labels, alpha=ALPHA, delta=DELTA):
    """Slow and obvious, straight from the formula: python loops over proxies and samples, float64 maths."""
    rows, labels = cosines.tolist(), labels.tolist()
    classes = len(rows[0])
    pulls, pushes = [], []
    for p in range(classes):
        positives = [rows[i][p] for i in range(len(rows)) if labels[i] == p]
        negatives = [rows[i][p] for i in range(len(rows)) if labels[i] != p]
        if positives:  # P+: only the proxies of classes present in the batch pull
            pulls.append(math.log(1 + sum(math.exp(-alpha * (s - delta)) for s in positives)))
        pushes.append(math.log(1 + sum(math.exp(alpha * (s + delta)) for s in negatives)))  # every proxy
    return sum(pulls) / len(pulls) + sum(pushes) / classes


def random_batch(dtype, batch=12, classes=7, seed=0):
    gen = torch.Generator().manual_seed(seed)
    cosines = (torch.rand(batch, classes, generator=gen, dtype=torch.float64) * 2 - 1).to(dtype)
    labels = torch.randint(0, classes - 2, (batch,), generator=gen)  # the last two classes are absent
    return cosines, labels


def hand_batch():
    """6 samples, 4 proxies; class 3 has no sample. Every cosine to the own proxy is delta = 0.1 and every other
    cosine is -delta = -0.1, so each exp(...) in the formula is exp(0) = 1, except two entries:
    sample 0 to proxy 0 is 0.1 - ln(2)/32 (its pull term is exp(ln 2) = 2) and sample 5 to proxy 3 is
    -0.1 + ln(3)/32 (its push term is exp(ln 3) = 3)."""
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    cosines = torch.full((6, 4), -DELTA, dtype=torch.float64)
    cosines[torch.arange(6), labels] = DELTA
    cosines[0, 0] = DELTA - math.log(2) / ALPHA
    cosines[5, 3] = -DELTA + math.log(3) / ALPHA
    return cosines, labels


def test_hand_computed_six_samples():
    # Pulls (P+ = proxies 0, 1, 2): proxy 0 has samples 0, 1, 2 -> log(1 + 2 + 1 + 1) = log 5; proxy 1 has samples
    # 3, 4 -> log(1 + 1 + 1) = log 3; proxy 2 has sample 5 -> log(1 + 1) = log 2. Mean: log(5 x 3 x 2) / 3.
    # Pushes (all 4 proxies): proxy 0 has 3 negatives -> log 4; proxy 1: 4 -> log 5; proxy 2: 5 -> log 6;
    # proxy 3: samples 0-4 give 1 each, sample 5 gives 3 -> log(1 + 5 + 3) = log 9. Mean: log(4 x 5 x 6 x 9) / 4.
    # Total: log(30) / 3 + log(1080) / 4 = 1.1337325 + 1.7461791 = 2.879911540583618
    cosines, labels = hand_batch()
    loss = proxy_anchor_loss(cosines, labels, ALPHA, DELTA)
    # float64 throughout: the loss and the hand formula differ by a few roundings of 1e-16 (1e-12 leaves room).
    assert loss.item() == pytest.approx(math.log(30) / 3 + math.log(1080) / 4, abs=1e-12)
    assert loss.item() == pytest.approx(2.879911540583618, abs=1e-12)
    assert reference(cosines, labels) == pytest.approx(2.879911540583618, abs=1e-12)


@pytest.mark.parametrize(("dtype", "rel"), [(torch.float64, 1e-12), (torch.float32, 1e-5), (torch.float16, 2e-2)])
def test_matches_the_slow_reference(dtype, rel):
    # float16 holds a cosine to ~3 digits, and alpha = 32 multiplies that error: about 1% on the loss. Training
    # computes the loss in float32 whatever the autocast dtype, so float16 only needs to stay close and finite.
    # float32: elementwise maths and sums of <= 12 terms, 6e-8 per rounding whatever the vector width; float64 1e-16.
    for seed in range(3):
        cosines, labels = random_batch(dtype, seed=seed)
        loss = proxy_anchor_loss(cosines, labels, ALPHA, DELTA)
        assert loss.dtype == dtype and torch.isfinite(loss)
        assert loss.item() == pytest.approx(reference(cosines.double(), labels), rel=rel)


def test_large_cosine_scales_do_not_overflow():
    # exp(alpha x 1.1) overflows float32 for alpha >= 81; the log-sum-exp form does not.
    cosines, labels = random_batch(torch.float32)
    loss = proxy_anchor_loss(cosines, labels, alpha=200.0, delta=DELTA)
    assert torch.isfinite(loss)
    # float32 cosines (exact in float64 too): the float32 log-sum-exp rounds a few times, 6e-8 each; 1e-5 is far.
    assert loss.item() == pytest.approx(reference(cosines.double(), labels, alpha=200.0), rel=1e-5)


def test_a_proxy_without_negatives_adds_zero_but_counts_in_the_mean():
    cosines = torch.tensor([[0.5, -0.2], [0.3, 0.4]], dtype=torch.float64)
    labels = torch.tensor([0, 0])  # proxy 0 has no negative, proxy 1 no positive
    pull = math.log(1 + math.exp(-32 * 0.4) + math.exp(-32 * 0.2))
    push = math.log(1 + math.exp(32 * -0.1) + math.exp(32 * 0.5))
    # float64 against python floats: a few roundings of 1e-16.
    assert proxy_anchor_loss(cosines, labels).item() == pytest.approx(pull / 1 + (0 + push) / 2, rel=1e-12)


def test_gradients_match_finite_differences():
    cosines, labels = random_batch(torch.float64, batch=6, classes=4)
    cosines = (cosines * 0.1).requires_grad_(True)  # small cosines: no term saturates, every gradient is seen
    assert torch.autograd.gradcheck(lambda c: proxy_anchor_loss(c, labels, ALPHA, DELTA), (cosines,))


# pml computes the loss by another route (its own normalisation, log-sum-exp and reducer): float32's roundings of
# a loss of order 1 stay below 1e-5; float64's below 1e-12. Another reduction or margin moves it by percents.
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_matches_pytorch_metric_learning(dtype, tol):
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    gen = torch.Generator().manual_seed(1)
    embeddings = torch.randn(16, 8, generator=gen, dtype=dtype)
    labels = torch.randint(0, 5, (16,), generator=gen)
    proxies = torch.randn(6, 8, generator=gen, dtype=dtype)  # class 5 is absent from the batch
    theirs = pml.ProxyAnchorLoss(num_classes=6, embedding_size=8, margin=DELTA, alpha=ALPHA)
    theirs.proxies.data = proxies.clone()
    # pml's CosineSimilarity normalises both the embeddings and the proxies; its DivisorReducer divides the pulls
    # by the proxies with positives and the pushes by all proxies: the same cosines and the same reduction.
    cosines = F.normalize(embeddings, dim=1) @ F.normalize(proxies, dim=1).T
    ours = proxy_anchor_loss(cosines, labels, ALPHA, DELTA)
    assert ours.item() == pytest.approx(theirs(embeddings, labels).item(), rel=tol, abs=tol)
