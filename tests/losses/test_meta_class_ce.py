import math

import pytest
import torch

from dmlbench.losses.meta_class_ce import meta_class_cross_entropy, meta_targets


def reference(logits, meta_labels, labels):
    """Slow and obvious: per image and per learner, -log softmax at its meta class, in python floats."""
    terms = []
    for b, label in enumerate(labels.tolist()):
        for e in range(logits.shape[1]):
            row = logits[b, e].tolist()
            target = meta_labels[e, label].item()
            terms.append(math.log(sum(math.exp(v) for v in row)) - row[target])
    return sum(terms) / len(terms)


def test_hand_computed_six_samples():
    # 2 learners, 2 meta classes, 3 classes; learner 0 maps classes (0, 1, 2) -> (0, 1, 1), learner 1 -> (1, 0, 1).
    # Logits are 0 except where noted, so a term is ln 2 when both logits are 0, and ln(1 + e) - 1 or ln(1 + e)
    # when one logit is 1 and it is / is not the target.
    meta_labels = torch.tensor([[0, 1, 1], [1, 0, 1]])
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    logits = torch.zeros(6, 2, 2, dtype=torch.float64)
    logits[0, 0, 0] = 1.0  # image 0 (class 0), learner 0: target 0 has logit 1 -> ln(1 + e) - 1
    logits[1, 1, 1] = 1.0  # image 1 (class 1), learner 1: target 0, the other logit is 1 -> ln(1 + e)
    # the other 10 terms are ln 2
    expected = (math.log(1 + math.e) - 1 + math.log(1 + math.e) + 10 * math.log(2)) / 12
    loss = meta_class_cross_entropy(logits, meta_labels, labels)
    # float64 throughout: the loss and the hand formula differ by a few roundings of 1e-16 (1e-12 leaves room).
    assert loss.item() == pytest.approx(expected, abs=1e-12)
    assert reference(logits, meta_labels, labels) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("dtype", "rel"), [(torch.float64, 1e-12), (torch.float32, 1e-5), (torch.bfloat16, 1e-5)])
def test_matches_the_slow_reference(dtype, rel):
    gen = torch.Generator().manual_seed(0)
    logits = (torch.randn(9, 5, 7, generator=gen, dtype=torch.float64) * 3).to(dtype)
    meta_labels = torch.randint(0, 7, (5, 11), generator=gen)
    labels = torch.randint(0, 11, (9,), generator=gen)
    loss = meta_class_cross_entropy(logits, meta_labels, labels)
    assert loss.dtype == torch.promote_types(dtype, torch.float32)
    # bf16 inputs are compared with the reference on the same (rounded) values: the loss itself runs in float32.
    # float32: log-sum-exps of 7 logits and a mean of 45 terms, 6e-8 per rounding, far below 1e-5; float64 1e-16.
    assert loss.item() == pytest.approx(reference(logits.double(), meta_labels, labels), rel=rel)


def test_meta_targets_per_image_and_learner():
    meta_labels = torch.tensor([[0, 1, 2], [2, 2, 0]])
    assert meta_targets(meta_labels, torch.tensor([2, 0])).tolist() == [[2, 0], [0, 2]]


def test_gradient_reaches_every_learner():
    logits = torch.zeros(4, 3, 5, requires_grad=True)
    meta_class_cross_entropy(logits, torch.randint(0, 5, (3, 6)), torch.tensor([0, 1, 2, 3])).backward()
    assert (logits.grad.abs().sum(dim=(0, 2)) > 0).all()


def test_meta_labels_handed_over_as_float_still_index():
    # The training step casts every model output to float32, the meta-label table among them.
    logits = torch.randn(3, 2, 4)
    meta_labels, labels = torch.tensor([[0, 1, 2], [3, 3, 0]]), torch.tensor([2, 0, 1])
    # The same arithmetic on the same logits: equal to the bit.
    assert torch.equal(meta_class_cross_entropy(logits, meta_labels.float(), labels),
                       meta_class_cross_entropy(logits, meta_labels, labels))
