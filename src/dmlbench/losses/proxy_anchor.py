"""Proxy-Anchor loss (Kim et al. 2020): each class proxy is an anchor that pulls the batch's samples of its class
and pushes all the others, every sample weighted by how hard it is (the soft maximum of a log-sum-exp).

    L = 1/|P+| sum_{p in P+} log(1 + sum_{x in X_p+} exp(-alpha (s(x, p) - delta)))
      + 1/|P|  sum_{p in P}  log(1 + sum_{x in X_p-} exp( alpha (s(x, p) + delta)))

s(x, p): cosine of the unit embedding x and the L2-normalised proxy p; P: every proxy (one per training class);
P+: the proxies of the classes present in the batch; X_p+ / X_p-: the batch's samples of p's class / of the other
classes. A proxy without negatives in the batch adds log(1 + 0) = 0 but still counts in |P| (the seed's, and the
paper's, reduction). alpha = 32, delta = 0.1 in the paper and the seed.
"""

import torch
import torch.nn.functional as F


def proxy_anchor_loss(cosines: torch.Tensor, labels: torch.Tensor, alpha: float = 32.0,
                      delta: float = 0.1) -> torch.Tensor:
    """The loss above, from ``cosines`` (B, classes) = s(x_i, p_c) and integer ``labels`` (B,)."""
    positive = F.one_hot(labels, cosines.shape[1]).bool()  # (B, classes): sample i is of proxy c's class
    pulls = log1p_sum_exp(-alpha * (cosines - delta), positive)  # (classes,)
    pushes = log1p_sum_exp(alpha * (cosines + delta), ~positive)  # (classes,)
    present = positive.any(dim=0)  # P+
    return pulls[present].sum() / present.sum() + pushes.mean()


def log1p_sum_exp(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per column c: log(1 + sum_{i: mask[i, c]} exp(logits[i, c])), without overflow.

    A log-sum-exp over the column's kept entries and one extra 0 logit (the "1 +"); an empty column gives 0.
    """
    kept = logits.masked_fill(~mask, float("-inf"))
    one = kept.new_zeros(1, kept.shape[1])  # exp(0) = 1
    return torch.logsumexp(torch.cat([one, kept]), dim=0)
