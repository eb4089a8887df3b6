"""Builders several methods share: classifier accuracy, and the seeds' Resize((r, r)) + crop presets."""

import torch

from dmlbench.data.transforms import eval_preset, train_preset


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
