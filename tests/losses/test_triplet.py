import math

import pytest
import torch

from dmlbench.losses.triplet import batch_hard_triplet, pairwise_distances


def reference(embeddings, labels, margin):
    """Slow and obvious: loops over anchors and pairs; differentiable, so gradients can be compared."""
    labels = labels.tolist()
    losses = []
    for a in range(len(labels)):
        pos = [torch.linalg.vector_norm(embeddings[a] - embeddings[j])
               for j in range(len(labels)) if labels[j] == labels[a] and j != a]
        neg = [torch.linalg.vector_norm(embeddings[a] - embeddings[j])
               for j in range(len(labels)) if labels[j] != labels[a]]
        d_pos = torch.stack(pos).max() if pos else embeddings.new_zeros(())
        d_neg = torch.stack(neg).min()
        losses.append(torch.relu(d_pos - d_neg + margin))
    return torch.stack(losses).mean()


def test_hand_computed_2d_batch():
    # Points: 0 (0,0) a; 1 (3,4) a; 2 (0,1) b; 3 (0,3) b; 4 (6,8) c (no positive). margin 0.5.
    # Distances: d01=5 d02=1 d03=3 d04=10 d12=sqrt18 d13=sqrt10 d14=5 d23=2 d24=sqrt85 d34=sqrt61.
    # anchor 0: pos d01=5, nearest neg d02=1           -> 5 - 1 + 0.5          = 4.5
    # anchor 1: pos d01=5, nearest neg d13=sqrt10      -> 5 - 3.16227766 + 0.5 = 2.33772234
    # anchor 2: pos d23=2, nearest neg d02=1           -> 2 - 1 + 0.5          = 1.5
    # anchor 3: pos d23=2, nearest neg d03=3           -> 2 - 3 + 0.5 < 0      -> 0
    # anchor 4: no positive -> 0, nearest neg d14=5    -> 0 - 5 + 0.5 < 0      -> 0
    # mean over the 5 anchors: (11.5 - sqrt10) / 5 = 1.66754447
    emb = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0], [0.0, 3.0], [6.0, 8.0]])
    labels = torch.tensor([0, 0, 1, 1, 2])
    # float32 input: distances of up to 10 carry float32's relative 6e-8 (about 1e-6 absolute); 1e-6 is that bound.
    # sqrt10 is irrational, so no exact float32 answer exists: the float64 formula is in the next test.
    assert batch_hard_triplet(emb, labels, margin=0.5).item() == pytest.approx(1.667544467966324, abs=1e-6)


def test_anchor_without_positive_counts_its_positive_distance_as_zero():
    # Two singletons 0.05 apart, margin 0.1: each anchor gives 0 - 0.05 + 0.1 = 0.05; mean 0.05.
    emb = torch.tensor([[0.0, 0.0], [0.0, 0.05]], dtype=torch.float64)
    # float64: 0.05 and 0.1 are not exact binary fractions, so rounding of 1e-17 remains.
    assert batch_hard_triplet(emb, torch.tensor([0, 1]), margin=0.1).item() == pytest.approx(0.05, abs=1e-12)


def test_anchor_without_negative_adds_zero():
    # One class only: d_neg = inf for every anchor -> each term is 0, and the gradient stays finite.
    emb = torch.tensor([[0.0, 0.0], [3.0, 4.0]], requires_grad=True)
    loss = batch_hard_triplet(emb, torch.tensor([7, 7]), margin=0.1)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(emb.grad).all()


# The vectorised loss against a loop over anchors, same dtype: distances of 16-d points (sums of 16 squares) and a
# mean of 14 terms. float32 rounds each at 6e-8 relative of values near 6, whatever the vector width: 1e-5 is far
# above it. float64: 1e-10. Gradients pass a sqrt's 1/(2d) and the hinge: 10x the value's tolerance.
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_matches_loop_reference_value_and_gradient(dtype, tol):
    gen = torch.Generator().manual_seed(0)
    data = torch.randn(14, 16, generator=gen).to(dtype)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 5])  # 4 and 5 have no positive
    ours_in = data.clone().requires_grad_(True)
    ref_in = data.clone().requires_grad_(True)
    ours = batch_hard_triplet(ours_in, labels, margin=2.0)  # large margin: most anchors are active
    ref = reference(ref_in, labels, margin=2.0)
    ours.backward()
    ref.backward()
    assert ours.dtype == dtype
    assert ours.item() > 0
    torch.testing.assert_close(ours, ref, rtol=tol, atol=tol)
    torch.testing.assert_close(ours_in.grad, ref_in.grad, rtol=10 * tol, atol=10 * tol)


def test_distances_are_euclidean_not_squared():
    emb = torch.tensor([[0.0, 0.0], [3.0, 4.0], [3.0, 4.0]])
    expected = torch.tensor([[0.0, 5.0, 5.0], [5.0, 0.0, 0.0], [5.0, 0.0, 0.0]])
    # Small integers: every product, sum and square root here is exact in float32, on any ISA (FMA or not).
    assert torch.equal(pairwise_distances(emb), expected)


@pytest.mark.parametrize("labels", [[0, 0, 1, 1], [0, 1, 0, 1], [0, 0, 0, 0], [0, 1, 2, 3]])
def test_gradient_is_finite_with_duplicate_embeddings(labels):
    # Rows 0 and 1 coincide (distance 0), whatever their labels; sqrt's slope at 0 must not leak.
    emb = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.5, -1.0], [0.5, -1.0]], requires_grad=True)
    loss = batch_hard_triplet(emb, torch.tensor(labels), margin=0.1)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(emb.grad).all()


def test_identical_batch_gives_the_margin():
    # Every distance is 0: d_pos = d_neg = 0, so each anchor contributes exactly the margin.
    emb = torch.ones(6, 4, requires_grad=True)
    loss = batch_hard_triplet(emb, torch.tensor([0, 0, 1, 1, 2, 2]), margin=0.1)
    loss.backward()
    assert loss.item() == pytest.approx(0.1, abs=1e-7)  # float32: 0.1 itself is 0.1 + 1.5e-9 there
    assert torch.isfinite(emb.grad).all()


def test_normalised_embeddings_like_cgd():
    # CGD feeds L2-normalised vectors: distances lie in [0, 2]; the value matches the reference.
    gen = torch.Generator().manual_seed(3)
    emb = torch.nn.functional.normalize(torch.randn(32, 64, generator=gen, dtype=torch.float64), dim=1)
    labels = torch.arange(8).repeat_interleave(4)
    ours = batch_hard_triplet(emb, labels, margin=0.1)
    assert ours.item() == pytest.approx(reference(emb, labels, 0.1).item(), abs=1e-12)  # float64: 1e-16 roundings
    assert 0.0 <= ours.item() <= 2.1 and not math.isnan(ours.item())
