"""Batch-hard triplet with the soft margin (Hermans et al. 2017, as the CGD-TF seed trains it), and the floored
Euclidean distances it and the point-to-set loss share."""

import torch
import torch.nn.functional as F

DISTANCE_FLOOR = 1e-6  # the seed's: no distance below it, so sqrt's slope stays finite when embeddings coincide


def floored_distances(embeddings: torch.Tensor, floor: float = DISTANCE_FLOOR) -> torch.Tensor:
    """(B, B) Euclidean distances max(|a - b|, floor), from the differences (no cancellation of the |a|^2 + |b|^2
    - 2ab expansion); at or below the floor the gradient is exactly 0, never sqrt(0)'s infinite slope.

    Half-precision input is computed in float32 (squares of large embeddings overflow float16).
    """
    if embeddings.dtype in (torch.float16, torch.bfloat16):
        embeddings = embeddings.float()
    differences = embeddings[:, None, :] - embeddings[None, :, :]  # (B, B, D)
    return differences.square().sum(dim=2).clamp_min(floor * floor).sqrt()


def soft_batch_hard_triplet(embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """mean_a log(1 + exp(max_{p: y_p = y_a, p != a} d(a, p) - min_{n: y_n != y_a} d(a, n))), d floored.

    The seed's masks: an anchor without a positive gets d_pos = 0 and still counts; one without a negative adds 0.
    """
    dist = floored_distances(embeddings)  # (B, B)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=dist.device)
    d_pos = (dist * (same & ~eye)).amax(dim=1)  # farthest positive, 0 when none
    d_neg = dist.masked_fill(same, float("inf")).amin(dim=1)  # nearest negative, inf when none
    return F.softplus(d_pos - d_neg).mean()
