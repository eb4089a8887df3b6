"""Every registered backbone gets the same checks: trunk shape and channels, and the input its weights expect."""

import pytest
import torch
from PIL import Image

from dmlbench.data.transforms import eval_preset
from dmlbench.methods import METHODS
from dmlbench.models.backbones import BACKBONES, IMAGENET, Normalization, backbone_channels, build_backbone, build_trunk


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_trunk_gives_the_registered_channels(name):
    trunk = build_trunk(name, pretrained=False).eval()
    with torch.no_grad():
        features = trunk(torch.randn(2, 3, 64, 64))
    assert features.ndim == 4 and features.shape[:2] == (2, backbone_channels(name))


def test_resnet_channels_and_resnext_groups():
    assert [backbone_channels(n) for n in ("resnet18", "resnet34", "resnet50", "resnext50", "googlenet")] == [
        512, 512, 2048, 2048, 1024]
    assert build_backbone("resnext50", pretrained=False).layer1[0].conv2.groups == 32


def test_googlenet_is_a_plain_trunk_with_its_own_normalisation():
    net = build_backbone("googlenet", pretrained=False)
    assert net.aux1 is None and net.aux2 is None and not net.transform_input
    # torchvision's GoogLeNet weights expect (x - 0.5) / 0.5, not ImageNet statistics: white -> 1, black -> -1.
    white = eval_preset(8, None, BACKBONES["googlenet"].normalization)(Image.new("RGB", (8, 8), (255, 255, 255)))
    black = eval_preset(8, None, BACKBONES["googlenet"].normalization)(Image.new("RGB", (8, 8), (0, 0, 0)))
    # (1 - 0.5) / 0.5 is exact in float32; allclose's default 1e-5 relative allows a normalisation written as
    # x x (1 / std) + b, which rounds once or twice (6e-8 each).
    assert torch.allclose(white, torch.ones_like(white)) and torch.allclose(black, -torch.ones_like(black))
    assert BACKBONES["resnet50"].normalization == IMAGENET


def test_caffe_style_normalisation_reads_bgr_0_to_255():
    """BN-Inception's public weights: BGR, 0-255, mean [104, 117, 128], std 1."""
    caffe = Normalization((104.0, 117.0, 128.0), (1.0, 1.0, 1.0), scale=255.0, bgr=True)
    x = eval_preset(4, None, caffe)(Image.new("RGB", (4, 4), (255, 0, 10)))
    # ToTensor's / 255, then x 255, rounds in float32: 6e-8 of 255 is 1.5e-5, so 1e-4 (a wrong mean is off by >= 1).
    assert x[:, 0, 0].tolist() == pytest.approx([10 - 104, 0 - 117, 255 - 128], abs=1e-4)  # B, G, R


@pytest.mark.parametrize("method", ["normsoftmax"])
def test_a_method_trains_on_a_non_resnet_trunk(method):
    cfg = METHODS[method].config_cls(feature_dim=16, temperature=0.05, classes_per_batch=2, images_per_class=2,
                                     lr=0.01, momentum=0.9, weight_decay=1e-4, warmup_epochs=0, epochs=1,
                                     lr_step_fraction=0.5, lr_gamma=0.1, train_resize=72, train_crop=64,
                                     test_resize=72, test_crop=64)
    model = METHODS[method].build_model(cfg, "googlenet", 5, False, 0)
    embedding, logits = model(torch.randn(2, 3, 64, 64))
    assert embedding.shape == (2, 16) and logits.shape == (2, 5)
    METHODS[method].loss(cfg, (embedding, logits), torch.tensor([0, 3]))["loss"].backward()
    assert model.trunk[0].conv.weight.grad is not None
