"""What a ``Method`` gets unless it says otherwise (``methods/method.py``): the seeds' common recipe.

The defaults read their values from the method's params section by field name, so a section with
``train_resize``/``train_crop``/``test_resize`` (and optionally ``test_crop``) gets the ImageNet-style presets,
one with ``classes_per_batch``/``images_per_class`` gets P x K batches (``batch_size``: plain shuffled ones), and
one with ``lr``/``epochs``/``lr_milestones``/``lr_gamma`` gets Adam with a MultiStepLR schedule.
"""

import torch

from dmlbench.data.sampler import PxKSampler, ShuffledBatchSampler
from dmlbench.data.transforms import eval_preset, train_preset
from dmlbench.errors import DmlbenchError
from dmlbench.methods.optimization import Optimization


def argmax_correct(cfg, outputs: tuple, labels: torch.Tensor) -> torch.Tensor:
    """Correct top-1 predictions of the classifier logits (the model's second output)."""
    return (outputs[1].argmax(dim=1) == labels).sum()


def resize_crop_train(cfg, norm):
    """Resize((train_resize, train_resize)) -> RandomCrop(train_crop) -> flip."""
    return train_preset(cfg.train_resize, cfg.train_crop, norm)


def resize_crop_test(cfg, norm):
    """Resize((test_resize, test_resize)) -> CenterCrop(test_crop) when the config has one."""
    return eval_preset(cfg.test_resize, getattr(cfg, "test_crop", None), norm)


def resize_crop_sizes(cfg) -> dict[str, int]:
    """Sides the network sees in training (the crop) and testing, and the largest side Resize((r, r)) produces."""
    return {"train": cfg.train_crop, "test": getattr(cfg, "test_crop", None) or cfg.test_resize,
            "resize": max(cfg.train_resize, cfg.test_resize)}


def batch_sampler(cfg, labels: list[int], seed: int):
    """P classes x K images per batch when the section has classes_per_batch and images_per_class (batches per
    epoch = training images // batch size), else plain shuffled batches of its batch_size."""
    if hasattr(cfg, "classes_per_batch") and hasattr(cfg, "images_per_class"):
        return PxKSampler(labels, cfg.classes_per_batch, cfg.images_per_class, seed)
    if hasattr(cfg, "batch_size"):
        return ShuffledBatchSampler(len(labels), cfg.batch_size, seed)
    raise DmlbenchError(f"{type(cfg).__name__} has neither classes_per_batch and images_per_class nor batch_size: "
                        f"add them to the section or give the Method its own batch_sampler")


def pxk_with_pairs(cfg, labels: list[int], seed: int) -> PxKSampler:
    """P x K batches, refusing data where a batch could hold no positive pair (batch-hard triplet losses)."""
    return PxKSampler(labels, cfg.classes_per_batch, cfg.images_per_class, seed, require_pairs=True)


def adam_multistep(cfg, model: torch.nn.Module) -> Optimization:
    """Adam without weight decay; MultiStepLR x lr_gamma at int(fraction x epochs) for each of lr_milestones,
    stepped once per epoch; no warm-up."""
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    milestones = [int(f * cfg.epochs) for f in cfg.lr_milestones]
    return Optimization(optimizer, torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=cfg.lr_gamma))


def embedding_size(cfg) -> str:
    """The variant label: the embedding size ("512-d") when the section has feature_dim, else "base"."""
    return f"{cfg.feature_dim}-d" if hasattr(cfg, "feature_dim") else "base"
