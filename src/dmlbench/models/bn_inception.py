"""BN-Inception (Ioffe & Szegedy 2015), the architecture of the `pretrainedmodels` package (the UnifiedProxy
seed's), imported only when this backbone is built: the package loads every model it has, which takes seconds.

Its public ImageNet weights come from Caffe: they expect BGR pixels in 0-255 minus [104, 117, 128] (std 1); the
registry entry in ``backbones.py`` says so with its ``Normalization``.
"""

from dataclasses import dataclass

import torch
from torch import nn

from dmlbench.errors import DmlbenchError

URL = "http://data.lip6.fr/cadene/pretrainedmodels/bn_inception-52deb4733.pth"  # pretrainedmodels' 'imagenet'
CHANNELS = 1024  # inception_5b's output


def build_bn_inception() -> nn.Module:
    """The whole network with its 1000-class classifier (so the public weights load strictly), random init."""
    try:
        from pretrainedmodels.models.bninception import BNInception
    except ImportError:
        raise DmlbenchError("backbone bn_inception needs the pretrainedmodels package: pip install "
                            "pretrainedmodels (or pip install -e .)") from None
    return BNInception(num_classes=1000)


class BNInceptionFeatures(nn.Module):
    """The network up to inception_5b (B, 1024, h, w): its own ``features`` graph, whose branches concatenate, so
    it cannot be a plain Sequential of children. The pooling and classifier are removed, so they count nowhere."""

    def __init__(self, net: nn.Module):
        super().__init__()
        del net.global_pool, net.last_linear  # ``features`` never uses them
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x)


def bn_inception_trunk(net: nn.Module) -> nn.Sequential:
    """The registry's trunk: a Sequential (as for every backbone) holding the features graph."""
    return nn.Sequential(BNInceptionFeatures(net))


@dataclass(frozen=True)
class BNInceptionWeights:
    """What ``backbones.build_backbone`` asks of a weights entry (``url``, ``get_state_dict``), as torchvision's
    ``WeightsEnum`` offers it, for a file that torchvision does not know."""

    url: str = URL

    def get_state_dict(self, progress: bool = False, check_hash: bool = True) -> dict:
        # No hash check: pretrainedmodels loads this file without one, and we could not confirm that the name's
        # 52deb4733 is its sha256 prefix (torch's check), so checking could refuse a good file.
        state = torch.hub.load_state_dict_from_url(self.url, progress=progress, check_hash=False)
        return {k: _unbatched(v) for k, v in state.items()}


def _unbatched(tensor: torch.Tensor) -> torch.Tensor:
    """An older port of these weights stores BatchNorm vectors as (1, C); the layers want (C,)."""
    return tensor.squeeze(0) if tensor.dim() == 2 and tensor.shape[0] == 1 else tensor
