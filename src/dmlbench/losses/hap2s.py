"""Hard-aware point-to-set loss (Yu et al. 2018) with the CGD-TF seed's polynomial weights and soft margin."""

import torch
import torch.nn.functional as F

from dmlbench.losses.soft_batch_hard import floored_distances

POSITIVE_POWER = 10.0  # the seed's p for the positive set: far positives weigh most
NEGATIVE_POWER = -20.0  # and for the negative set: near negatives weigh most
WEIGHT_BASE_CAP = 100.0  # min(d + 1, 100): 100^10 still fits float32 (the loss never runs below float32)
SET_EPSILON = 1e-6  # in the set distance's denominator, as the seed


def set_distances(dist: torch.Tensor, mask: torch.Tensor, power: float) -> torch.Tensor:
    """Per anchor (row): sum_j d_j w_j / (sum_j w_j + 1e-6) over the masked j, w = min(d + 1, 100)^power; 0 for an
    empty set."""
    weights = dist.add(1.0).clamp_max(WEIGHT_BASE_CAP).pow(power) * mask
    return (dist * weights).sum(dim=1) / (weights.sum(dim=1) + SET_EPSILON)


def hap2s_loss(embeddings: torch.Tensor, labels: torch.Tensor, positive_power: float = POSITIVE_POWER,
               negative_power: float = NEGATIVE_POWER) -> torch.Tensor:
    """mean_a log(1 + exp(P_a - N_a)): P_a the set distance to a's positives (self excluded, power +10), N_a to its
    negatives (power -20), on Euclidean distances floored at 1e-6.

    Half-precision input is computed in float32 (the weights reach 100^10), and so is the result.
    """
    dist = floored_distances(embeddings)  # (B, B)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=dist.device)
    positives = set_distances(dist, (same & ~eye).to(dist.dtype), positive_power)
    negatives = set_distances(dist, (~same).to(dist.dtype), negative_power)
    return F.softplus(positives - negatives).mean()
