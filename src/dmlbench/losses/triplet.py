"""Batch-hard triplet loss on Euclidean distances (CGD's metric loss)."""

import torch


def pairwise_distances(embeddings: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """(B, B) Euclidean distances; the clamp keeps sqrt's gradient finite for identical vectors."""
    dot = embeddings @ embeddings.T
    norms = dot.diagonal()
    squared = (norms[:, None] - 2 * dot + norms[None, :]).clamp_min(0.0)
    # The expansion leaves rounding noise on the diagonal; a vector's distance to itself is exactly 0.
    eye = torch.eye(len(embeddings), dtype=torch.bool, device=embeddings.device)
    squared = squared.masked_fill(eye, 0.0)
    # Identical vectors get distance 0 with gradient 0 instead of sqrt's infinite slope.
    return torch.where(squared > eps, squared.clamp_min(eps).sqrt(), torch.zeros_like(squared))


def batch_hard_triplet(embeddings: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """mean_a relu( max_{p: y_p = y_a, p != a} d(a, p) - min_{n: y_n != y_a} d(a, n) + margin ).

    An anchor without positive gets d_pos = 0 (the seed's masked max); one without negative adds 0.
    Distances are not squared.
    """
    dist = pairwise_distances(embeddings)  # (B, B)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=dist.device)
    d_pos = (dist * (same & ~eye)).amax(dim=1)  # farthest positive, 0 when none
    d_neg = dist.masked_fill(same, float("inf")).amin(dim=1)  # nearest negative
    return torch.relu(d_pos - d_neg + margin).mean()
