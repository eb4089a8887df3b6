"""Balanced proxy loss: dmlbench's definition of the UnifiedProxy seed's `balanced_proxy`, whose formula the seed
never published. It weighs the two anchor directions of proxy losses equally, on the same proxies:

    L = 0.5 x 1/|B| sum_{x in B} -log( exp(alpha s(x, p_y)) / sum_c exp(alpha s(x, p_c)) )      sample-anchored
      + 0.5 x proxy_anchor(s, y; alpha, delta)                                                  proxy-anchored

The sample-anchored half is NormSoftmax's / ProxyNCA's softmax over all proxies at temperature 1 / alpha: every
sample is pulled to its own proxy against all others. The proxy-anchored half is Proxy-Anchor
(``losses/proxy_anchor.py``): every proxy weighs the batch's samples by hardness. s(x, p): cosine of the unit
embedding x and the L2-normalised proxy p; y: x's class; alpha = 32, delta = 0.1.
"""

import torch

from dmlbench.losses.normalized_softmax import normalized_softmax_loss
from dmlbench.losses.proxy_anchor import proxy_anchor_loss


def sample_anchored_loss(cosines: torch.Tensor, labels: torch.Tensor, alpha: float = 32.0) -> torch.Tensor:
    """mean_x -log softmax_c(alpha s(x, p_c))[y]: cross-entropy of the cosines at temperature 1 / alpha."""
    return normalized_softmax_loss(cosines, labels, 1.0 / alpha)


def balanced_proxy_terms(cosines: torch.Tensor, labels: torch.Tensor, alpha: float = 32.0,
                         delta: float = 0.1) -> dict[str, torch.Tensor]:
    """{"loss": the total above, "sample_anchored": its first half's loss, "proxy_anchor": its second's}."""
    sample = sample_anchored_loss(cosines, labels, alpha)
    anchor = proxy_anchor_loss(cosines, labels, alpha, delta)
    return {"loss": 0.5 * sample + 0.5 * anchor, "sample_anchored": sample, "proxy_anchor": anchor}


def balanced_proxy_loss(cosines: torch.Tensor, labels: torch.Tensor, alpha: float = 32.0,
                        delta: float = 0.1) -> torch.Tensor:
    """The total above, from ``cosines`` (B, classes) = s(x_i, p_c) and integer ``labels`` (B,)."""
    return balanced_proxy_terms(cosines, labels, alpha, delta)["loss"]
