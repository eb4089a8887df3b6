"""Label-smoothed, temperature-scaled cross-entropy (CGD's classification loss)."""

import torch
import torch.nn.functional as F


def label_smoothed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, smoothing: float,
                                 temperature: float) -> torch.Tensor:
    """loss = mean_i [ (1 - s) * (-log p_i[y_i]) + s * mean_c (-log p_i[c]) ],  p = softmax(logits / T).

    The smoothing mass is spread over all classes (the true one included), as in the seed.
    """
    log_p = F.log_softmax(logits / temperature, dim=1)  # (B, C)
    nll = -log_p.gather(1, labels[:, None]).squeeze(1)  # (B,)
    uniform = -log_p.mean(dim=1)  # (B,)
    return ((1.0 - smoothing) * nll + smoothing * uniform).mean()
