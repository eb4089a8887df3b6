"""CGD-TF's networks and its pad-to-square transform: strides, descriptors, the reference head's layers, norms."""

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from dmlbench.data.pad_square import PadToSquare
from dmlbench.models.cgdtf import CGDTF, ReferenceHead, feature_grid


def test_cgd_model_keeps_the_standard_strides_and_has_no_classifier():
    model = CGDTF("resnet18", "S", 16, pretrained=False).eval()
    assert model.trunk[6][0].conv1.stride == (2, 2)  # layer3 still halves (CGD's trunk sets 1 here)
    with torch.no_grad():
        assert model.trunk(torch.randn(1, 3, 64, 64)).shape == (1, 512, 2, 2)  # 64 / 32
        outputs = model(torch.randn(3, 3, 64, 64))
    assert len(outputs) == 1 and outputs[0].shape == (3, 16)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in model.modules())


def test_cgd_model_embedding_is_the_normalised_concatenation_of_normalised_descriptors():
    torch.manual_seed(0)
    model = CGDTF("resnet18", "SM", 8, pretrained=False).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        (embedding,) = model(images)
        features = model.trunk(images)
        s = F.normalize(features.mean(dim=(2, 3)) @ model.heads[0].weight.T, dim=1)
        m = F.normalize(features.amax(dim=(2, 3)) @ model.heads[1].weight.T, dim=1)
    assert torch.allclose(embedding, F.normalize(torch.cat([s, m], dim=1), dim=1), atol=1e-6)
    assert torch.allclose(embedding.norm(dim=1), torch.ones(2), atol=1e-6)
    assert all(head.bias is None and head.out_features == 4 for head in model.heads)


def test_reference_head_layers_follow_the_seed():
    model = ReferenceHead("resnet18", 24, 64, pretrained=False)
    conv512, act1, conv128, act2 = model.convs
    dense1024, act3, bn, dense = model.dense
    assert (conv512.in_channels, conv512.out_channels, conv512.kernel_size) == (512, 512, (1, 1))
    assert (conv128.in_channels, conv128.out_channels, conv128.kernel_size) == (512, 128, (1, 1))
    assert all(isinstance(a, nn.SiLU) for a in (act1, act2, act3))  # swish
    assert model.grid == (2, 2) and dense1024.in_features == 128 * 2 * 2 and dense1024.out_features == 1024
    assert isinstance(bn, nn.BatchNorm1d) and bn.eps == 1e-3 and bn.momentum == 0.01  # Keras's defaults
    assert (dense.in_features, dense.out_features) == (1024, 24)
    assert all(torch.equal(layer.bias, torch.zeros_like(layer.bias)) for layer in (conv512, conv128, dense1024, dense))


def test_reference_head_is_not_normalised_and_pools_other_sizes_to_its_grid():
    torch.manual_seed(0)
    model = ReferenceHead("resnet18", 24, 64, pretrained=False).eval()
    with torch.no_grad():
        (embedding,) = model(torch.randn(4, 3, 64, 64))
        (large,) = model(torch.randn(1, 3, 224, 224))  # 7 x 7 features, average-pooled to 2 x 2
    assert embedding.shape == (4, 24) and not torch.allclose(embedding.norm(dim=1), torch.ones(4), atol=1e-2)
    assert large.shape == (1, 24)


def test_the_grid_probe_leaves_batchnorm_statistics_and_the_mode_alone():
    model = ReferenceHead("resnet18", 8, 96, pretrained=False)
    assert model.grid == (3, 3) and model.trunk.training
    assert torch.equal(model.trunk[1].running_mean, torch.zeros(64)) and model.trunk[1].num_batches_tracked == 0
    assert feature_grid(model.trunk.eval(), 100) == (4, 4) and not model.trunk.training


def test_pad_to_square_centres_the_image_with_the_extra_pixel_bottom_right():
    image = Image.new("RGB", (6, 3), (255, 255, 255))  # width 6, height 3: 3 rows to add, 1 on top, 2 below
    square = PadToSquare()(image)
    assert square.size == (6, 6)
    rows = [square.getpixel((0, y)) for y in range(6)]
    assert rows == [(0, 0, 0)] + [(255, 255, 255)] * 3 + [(0, 0, 0)] * 2
    tall = PadToSquare()(Image.new("L", (2, 5), 200))  # 3 columns to add: 1 left, 2 right
    assert [tall.getpixel((x, 0)) for x in range(5)] == [0, 200, 200, 0, 0]


def test_pad_to_square_returns_a_square_image_unchanged():
    image = Image.new("RGB", (4, 4), (1, 2, 3))
    assert PadToSquare()(image) is image
