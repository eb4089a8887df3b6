"""Normalised softmax: cross-entropy of cosine logits divided by a temperature (NormSoftmax's loss)."""

import torch
import torch.nn.functional as F


def normalized_softmax_loss(cosine_logits: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """mean_i -log softmax(cos_i / T)[y_i]; cosines in [-1, 1], T = 0.05 in the seed."""
    return F.cross_entropy(cosine_logits / temperature, labels)
