"""The LREC network: a shared ResNet stem, then per learner its own layer2-4, global average pooling and
Linear(C -> meta classes); the learners run fused (``models/lrec_fused.py``) or one after the other.

Which form runs: fused on a GPU, where one grouped convolution replaces E small kernel launches; one by one on
the CPU, where ``benchmarks/lrec_speed.py`` measured the fused form 4.6x slower at the seed's 48 learners. Both
read the same weights, so the state dict, the model file and the parameter count do not depend on the device."""

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dmlbench.models.backbones import backbone_channels, build_backbone, require_resnet
from dmlbench.models.lrec_fused import LinearStack, fuse_learners, run_one_by_one, single_learner

# In Sequential(layer2, layer3, layer4): the convolutions of layer2's first block read the shared stem's output.
SHARED_INPUT = {"0.0.conv1", "0.0.downsample.0"}


def stem_and_learners(backbone: str, pretrained: bool, count: int, meta_classes: int
                      ) -> tuple[nn.Sequential, list[nn.Sequential], list[nn.Linear]]:
    """The shared stem (conv1, bn1, relu, maxpool, layer1) and ``count`` learners (layer2-4) with their heads.

    Pretrained learners all start from the same ImageNet weights; otherwise each draws its own init. On the meta
    device (counting) one learner stands for all: they hold the same shapes and no values.
    """
    require_resnet(backbone, "lrec")
    net = build_backbone(backbone, pretrained)
    stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1)
    on_meta = net.conv1.weight.is_meta
    learners = [nn.Sequential(net.layer2, net.layer3, net.layer4)]
    for _ in range(count - 1):
        if pretrained or on_meta:
            learners.append(learners[0])
        else:
            other = build_backbone(backbone, False)
            learners.append(nn.Sequential(other.layer2, other.layer3, other.layer4))
    heads = [nn.Linear(backbone_channels(backbone), meta_classes) for _ in range(1 if on_meta else count)]
    return stem, learners, heads * (count if on_meta else 1)


def ensemble_embedding(logits: torch.Tensor) -> torch.Tensor:
    """(B, E, M) logits -> (B, E x M): each learner's vector L2-normalised, concatenated, / sqrt(E), so the dot
    product of two embeddings is the mean over learners of their cosines (the seed's similarity)."""
    return F.normalize(logits, dim=2).flatten(1) / math.sqrt(logits.shape[1])


class LREC(nn.Module):
    """forward(x) -> (embedding (B, E x M), unit norm; logits (B, E, M); meta labels (E, classes)).

    ``meta_labels[e, c]`` is class c's meta class in learner e: a buffer, so the model file carries it.
    """

    def __init__(self, stem: nn.Module, learners: list[nn.Module], heads: list[nn.Linear], meta_labels: np.ndarray):
        super().__init__()
        self.ensemble_size = len(learners)
        self.stem = stem
        self.learners = fuse_learners(learners, SHARED_INPUT)
        self.execution = "auto"  # "fused", "loop", or auto: loop on the CPU, fused elsewhere (GPU; meta for counting)
        # A plain attribute, not a submodule: it holds no weights and must stay out of the state dict.
        self.__dict__["_one_learner"] = single_learner(learners[0])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.heads = LinearStack.from_linears(heads)
        self.register_buffer("meta_labels", torch.as_tensor(meta_labels, dtype=torch.long, device="cpu")
                             .to(self.heads.weight.device))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        shared = self.stem(x)
        if self.runs_fused(shared):
            maps = self.learners(shared)  # (B, E x C, h, w)
            pooled = torch.flatten(self.pool(maps), 1).view(x.shape[0], self.ensemble_size, -1)
        else:
            maps = run_one_by_one(self.learners, self._one_learner, self.ensemble_size, shared)
            pooled = torch.stack([torch.flatten(self.pool(m), 1) for m in maps], dim=1)  # (B, E, C)
        logits = self.heads(pooled)
        return ensemble_embedding(logits), logits, self.meta_labels

    def runs_fused(self, x: torch.Tensor) -> bool:
        """Whether forward runs the fused form for input ``x`` (see ``execution``)."""
        if self.execution not in ("auto", "fused", "loop"):
            raise ValueError(f"LREC.execution must be auto, fused or loop, got {self.execution!r}")
        if self.execution == "auto" and (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
            return True  # an exported graph has one form: the fused one (the loop's functional calls cannot trace)
        return self.execution == "fused" or (self.execution == "auto" and x.device.type != "cpu")

    def readable_record(self, classes: list[int]) -> dict:
        """The meta-class assignment for a person: per learner, one line of the meta classes of ``classes`` (the
        training class labels, in the model's class-index order)."""
        rows = [" ".join(map(str, row)) for row in self.meta_labels.tolist()]
        return {"ensemble_size": self.ensemble_size, "meta_classes": self.heads.weight.shape[1],
                "classes": " ".join(map(str, classes)), "meta_labels_per_learner": rows}


class LRECLoop(nn.Module):
    """The same computation with the learners run one after the other: the reference of the fused form
    (tests) and the other side of ``benchmarks/lrec_speed.py``."""

    def __init__(self, stem: nn.Module, learners: list[nn.Module], heads: list[nn.Linear], meta_labels: np.ndarray):
        super().__init__()
        self.stem = stem
        self.learners = nn.ModuleList(learners)
        self.heads = nn.ModuleList(heads)
        self.register_buffer("meta_labels", torch.as_tensor(meta_labels, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        shared = self.stem(x)
        logits = torch.stack([head(torch.flatten(F.adaptive_avg_pool2d(learner(shared), 1), 1))
                              for learner, head in zip(self.learners, self.heads)], dim=1)
        return ensemble_embedding(logits), logits, self.meta_labels


def build_pair(backbone: str, pretrained: bool, count: int, meta_labels: np.ndarray, meta_classes: int
               ) -> tuple[LREC, LRECLoop]:
    """A fused and a loop model holding the same weights (separate copies): for tests and the benchmark."""
    stem, learners, heads = stem_and_learners(backbone, pretrained, count, meta_classes)
    loop = LRECLoop(copy.deepcopy(stem), [copy.deepcopy(m) for m in learners], copy.deepcopy(heads), meta_labels)
    return LREC(stem, learners, heads, meta_labels), loop
