"""LREC's loss: every learner classifies the batch into its own meta classes."""

import torch
import torch.nn.functional as F


def meta_targets(meta_labels: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(E, classes) meta labels, (B,) class labels -> (B, E): each image's meta class in each learner.

    Cast to long: the training step hands the loss every model output in float32, this table included."""
    return meta_labels[:, labels].T.long()


def meta_class_cross_entropy(logits: torch.Tensor, meta_labels: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each learner's (B, E, M) logits against its meta labels, mean over batch and learners."""
    targets = meta_targets(meta_labels, labels)
    # At least float32: fp16/bf16 logits (autocast) would round the log-sum-exp.
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())
