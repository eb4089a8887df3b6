import math

import pytest
import torch

from dmlbench.losses.normalized_softmax import normalized_softmax_loss


def reference(cosines, labels, temperature):
    """Slow and obvious: python loops, float64 maths, -log softmax(cos / T)[y] averaged over the batch."""
    total = 0.0
    for row, label in zip(cosines.tolist(), labels.tolist()):
        scaled = [x / temperature for x in row]
        top = max(scaled)
        log_z = top + math.log(sum(math.exp(x - top) for x in scaled))
        total += log_z - scaled[label]
    return total / len(labels)


def test_hand_computed_two_samples():
    # T = 0.5. Row 0: cos [1, 0], label 0 -> logits [2, 0] -> -log(e^2 / (e^2 + 1)) = log(1 + e^-2).
    # Row 1: cos [0.5, -0.5], label 1 -> logits [1, -1] -> -log(e^-1 / (e + e^-1)) = log(1 + e^2) = 2 + log(1 + e^-2).
    # Mean: 1 + log(1 + e^-2) = 1.1269280110429727
    cosines = torch.tensor([[1.0, 0.0], [0.5, -0.5]], dtype=torch.float64)
    loss = normalized_softmax_loss(cosines, torch.tensor([0, 1]), temperature=0.5)
    # float64 throughout: the loss and the hand formula differ by a few roundings of 1e-16 (1e-12 leaves room).
    assert loss.item() == pytest.approx(1.1269280110429727, abs=1e-12)


def test_matches_the_slow_reference_on_a_random_batch():
    gen = torch.Generator().manual_seed(0)
    cosines = torch.rand(12, 7, generator=gen, dtype=torch.float64) * 2 - 1
    labels = torch.randint(0, 7, (12,), generator=gen)
    loss = normalized_softmax_loss(cosines, labels, temperature=0.05)
    # float64 against python floats: roundings of 1e-16, times 1/0.05 in the exponent, stay far below 1e-12.
    assert loss.item() == pytest.approx(reference(cosines, labels, 0.05), rel=1e-12)
