"""Frozen BatchNorm statistics: pretrained running means/variances kept while the affine parameters train."""

from torch import nn


class FrozenBatchNormStats(nn.Module):
    """Mixin for a model whose ``frozen_bn_scope()`` BatchNorm2d layers stay in eval mode in ``train()``.

    The seeds freeze them because the statistics come from ImageNet and their batches are small; frozen
    *random-init* statistics leave a network trained from scratch nearly untrainable, hence a switch.
    """

    freeze_bn: bool = False

    def frozen_bn_scope(self) -> nn.Module:
        """The part of the model whose BatchNorm2d statistics are frozen (the backbone trunk)."""
        raise NotImplementedError

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.freeze_bn:
            for module in self.frozen_bn_scope().modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self
