"""CGD network, descriptors and backbones: shapes, norms, validation, frozen BatchNorm2d, weights error."""

import pytest
import torch
from torch import nn

from dmlbench.errors import DmlbenchError
from dmlbench.models.backbones import build_backbone
from dmlbench.models.cgd import CGD, GD_CONFIGS, cgd_trunk
from dmlbench.models.descriptors import DESCRIPTORS, gem


def test_resnet18_outputs_shapes_and_unit_norm():
    torch.manual_seed(0)
    model = CGD("resnet18", "SMG", 96, 7, pretrained=False).eval()
    with torch.no_grad():
        embedding, logits = model(torch.randn(3, 3, 64, 64))
    assert embedding.shape == (3, 96) and logits.shape == (3, 7)
    # float32 norms of 96 values: each square and sum rounds at 6e-8, a few 1e-7 in all; 1e-5 leaves room for any
    # vector width, and a missing normalisation is off by far more.
    assert torch.allclose(embedding.norm(dim=1), torch.ones(3), atol=1e-5)
    # each descriptor's part is L2-normalised before the final normalisation: equal norms 1/sqrt(3)
    parts = embedding.view(3, 3, 32).norm(dim=2)
    assert torch.allclose(parts, torch.full((3, 3), 3 ** -0.5), atol=1e-5)


def test_resnet50_trunk_layer3_stride_one_layer4_stride_two():
    trunk = cgd_trunk("resnet50", pretrained=False).eval()
    sizes = {}
    for name, index in (("layer3", 6), ("layer4", 7)):
        trunk[index].register_forward_hook(lambda m, i, o, name=name: sizes.__setitem__(name, tuple(o.shape)))
    with torch.no_grad():
        trunk(torch.randn(1, 3, 224, 224))
    assert sizes == {"layer3": (1, 1024, 28, 28), "layer4": (1, 2048, 14, 14)}
    first = trunk[6][0]
    assert first.conv2.stride == (1, 1) and first.downsample[0].stride == (1, 1)
    assert trunk[7][0].conv2.stride == (2, 2)


def test_basicblock_stride_change_is_on_conv1():
    first = cgd_trunk("resnet18", pretrained=False)[6][0]
    assert first.conv1.stride == (1, 1) and first.downsample[0].stride == (1, 1)


@pytest.mark.parametrize("gd_config", GD_CONFIGS)
def test_every_gd_config_builds_and_runs(gd_config):
    model = CGD("resnet18", gd_config, 12, 5, pretrained=False).eval()
    with torch.no_grad():
        embedding, logits = model(torch.randn(2, 3, 32, 32))
    assert embedding.shape == (2, 12) and logits.shape == (2, 5)
    assert len(model.heads) == len(gd_config)
    assert all(head.out_features == 12 // len(gd_config) and head.bias is None for head in model.heads)


def test_classifier_is_bn1d_then_linear_with_bias():
    bn, linear = CGD("resnet18", "SG", 8, 4, pretrained=False).classifier
    assert isinstance(bn, nn.BatchNorm1d) and bn.num_features == 512
    assert linear.in_features == 512 and linear.out_features == 4 and linear.bias is not None


def test_classifier_sees_first_descriptor_raw():
    model = CGD("resnet18", "MS", 8, 4, pretrained=False).eval()
    seen = {}
    model.classifier.register_forward_hook(lambda m, i, o: seen.__setitem__("x", i[0]))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        model(x)
        expected = DESCRIPTORS["M"](model.trunk(x))
    assert torch.equal(seen["x"], expected)


def test_bad_gd_config_lists_choices():
    with pytest.raises(DmlbenchError, match="'SX'.*S, M, G, SM, MS, SG, GS, MG, GM, SMG, MSG, GSM"):
        CGD("resnet18", "SX", 12, 5, pretrained=False)


def test_feature_dim_not_divisible_names_both_values():
    with pytest.raises(DmlbenchError, match="feature_dim 100.*3 descriptors.*'SMG'"):
        CGD("resnet18", "SMG", 100, 5, pretrained=False)


def test_trunk_bn2d_stays_eval_and_bn1d_trains():
    model = CGD("resnet18", "SG", 8, 4, pretrained=False).train()
    bn2d = [m for m in model.trunk.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bn2d and not any(m.training for m in bn2d)
    assert all(p.requires_grad for m in bn2d for p in m.parameters())
    assert model.classifier[0].training and model.heads.training and model.training
    before = bn2d[0].running_mean.clone()
    model(torch.randn(4, 3, 32, 32))
    assert torch.equal(bn2d[0].running_mean, before)
    assert not model.eval().classifier[0].training


def test_descriptors_on_hand_computed_tensor():
    x = torch.tensor([[[[1.0, 2.0], [0.0, 3.0]]]])  # (1, 1, 2, 2)
    # float32 against python floats: 1.5, 3 and -2 are exact; the cube root rounds (6e-8), inside approx's 1e-6.
    assert DESCRIPTORS["S"](x).item() == pytest.approx(1.5)
    assert DESCRIPTORS["M"](x).item() == pytest.approx(3.0)
    # GeM p=3: mean(1 + 8 + 0 + 27) = 9 -> 9^(1/3)
    assert DESCRIPTORS["G"](x).item() == pytest.approx(9 ** (1 / 3))
    # signed root: mean of cubes -8 -> -2
    assert gem(torch.full((1, 1, 1, 2), -2.0)).item() == pytest.approx(-2.0)


def test_unknown_backbone_lists_choices():
    with pytest.raises(DmlbenchError, match="'vgg16'.*googlenet, resnet18, resnet34, resnet50, resnext50"):
        CGD("vgg16", "SG", 12, 5, pretrained=False)
    with pytest.raises(DmlbenchError, match="method cgd needs a ResNet backbone .* got 'googlenet'"):
        CGD("googlenet", "SG", 12, 5, pretrained=False)


def test_missing_pretrained_weights_is_one_line(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise OSError("no network in tests")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    with pytest.raises(DmlbenchError) as info:
        build_backbone("resnet50", pretrained=True)
    message = str(info.value)
    assert "\n" not in message
    assert "resnet50" in message and "resnet50-0676ba61.pth" in message
    assert str(tmp_path / "hub" / "checkpoints") in message and "pretrained: false" in message
