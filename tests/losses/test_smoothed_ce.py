import math

import pytest
import torch
import torch.nn.functional as F

from dmlbench.losses.smoothed_ce import label_smoothed_cross_entropy


def reference(logits, labels, smoothing, temperature):
    """Slow and obvious: python loops, float64 maths."""
    total = 0.0
    for row, label in zip(logits.tolist(), labels.tolist()):
        scaled = [x / temperature for x in row]
        top = max(scaled)
        log_z = top + math.log(sum(math.exp(x - top) for x in scaled))
        neg_log_p = [log_z - x for x in scaled]
        total += (1 - smoothing) * neg_log_p[label] + smoothing * sum(neg_log_p) / len(row)
    return total / len(labels)


def test_hand_computed_three_classes():
    # T = 0.5, s = 0.1. Rows 0 and 1 are [ln2 / 2, 0, 0] -> logits / T = [ln2, 0, 0]
    #   -> softmax = [2, 1, 1] / 4 = [1/2, 1/4, 1/4] -> -log p = [ln2, 2 ln2, 2 ln2], class mean 5/3 ln2.
    #   row 0, label 0: 0.9 * ln2   + 0.1 * 5/3 ln2 = 1.0666.. ln2 = 0.7393569926
    #   row 1, label 1: 0.9 * 2 ln2 + 0.1 * 5/3 ln2 = 1.9666.. ln2 = 1.3631894551
    # Row 2 is [0, 0, 0]: p = 1/3 everywhere -> -log p = ln3 for NLL and mean alike: 1.0986122887
    # Mean over the batch: (0.7393569926 + 1.3631894551 + 1.0986122887) / 3 = 1.0670529121
    half_ln2 = 0.5 * math.log(2)
    logits = torch.tensor([[half_ln2, 0.0, 0.0], [half_ln2, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    labels = torch.tensor([0, 1, 2])
    loss = label_smoothed_cross_entropy(logits, labels, smoothing=0.1, temperature=0.5)
    # float64 throughout: the loss and the hand formula differ by a few roundings of 1e-16 (1e-12 leaves room).
    assert loss.item() == pytest.approx(1.0670529121222037, abs=1e-12)


def test_no_smoothing_is_plain_cross_entropy_of_scaled_logits():
    # s = 0, T = 1, logits [0, ln3]: softmax = [1/4, 3/4]; label 1 -> -log(3/4) = 0.2876820725
    logits = torch.tensor([[0.0, math.log(3)]], dtype=torch.float64)
    loss = label_smoothed_cross_entropy(logits, torch.tensor([1]), smoothing=0.0, temperature=1.0)
    assert loss.item() == pytest.approx(0.28768207245178085, abs=1e-12)  # float64: rounding of 1e-16


# float32: a log-sum-exp of 7 logits and means over 16 rows, 6e-8 per rounding whatever the vector width, far
# below 1e-5; float64: the same at 1e-16.
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_matches_loop_reference_on_a_random_batch(dtype, tol):
    gen = torch.Generator().manual_seed(0)
    logits = (3 * torch.randn(16, 7, generator=gen)).to(dtype)
    labels = torch.randint(0, 7, (16,), generator=gen)
    ours = label_smoothed_cross_entropy(logits, labels, smoothing=0.1, temperature=0.5)
    assert ours.dtype == dtype
    assert ours.item() == pytest.approx(reference(logits.double(), labels, 0.1, 0.5), rel=tol)


def test_agrees_with_torch_label_smoothing():
    # torch spreads the smoothing mass over all classes too: (1 - s) NLL + s mean_c(-log p).
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(10, 5, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 5, (10,), generator=gen)
    ours = label_smoothed_cross_entropy(logits, labels, smoothing=0.2, temperature=0.5)
    theirs = F.cross_entropy(logits / 0.5, labels, label_smoothing=0.2)
    assert ours.item() == pytest.approx(theirs.item(), abs=1e-12)  # float64, two routes: roundings of 1e-16


def test_gradient_is_finite_for_extreme_logits():
    logits = torch.tensor([[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]], requires_grad=True)
    loss = label_smoothed_cross_entropy(logits, torch.tensor([1, 0]), smoothing=0.1, temperature=0.5)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
