"""CGD-TF's networks and its pad-to-square transform: strides, descriptors with bias and Glorot init, the seed's
clipped normalisation, the auxiliary classifier on both models, the reference head's layers."""

import math

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from dmlbench.data.pad_square import PadToSquare
from dmlbench.models.cgdtf import CGDTF, AuxiliaryClassifier, ReferenceHead, clipped_l2_normalize, feature_grid


def seed_normalize(row: list[float]) -> list[float]:
    """The seed's l2_normalize_batch_of_vectors for one row, written from its ops: tf.math.l2_normalize (x times
    rsqrt(max(sum x^2, 1e-12))) then tf.maximum(., 1e-6); python floats (float64)."""
    scale = 1.0 / math.sqrt(max(sum(v * v for v in row), 1e-12))
    return [max(v * scale, 1e-6) for v in row]


def test_clipped_normalisation_by_hand():
    x = torch.tensor([[3.0, -4.0, 0.0], [1e-7, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    # (3, -4, 0) / 5 = (0.6, -0.8, 0): the negative and the zero component become 1e-6.
    # (1e-7, 0, 0): |x|^2 = 1e-14 < 1e-12, so it is scaled by 1e6 only: 0.1 (F.normalize would give 1.0).
    # A zero row stays 0 before the clip: every component 1e-6.
    expected = torch.tensor([[0.6, 1e-6, 1e-6], [0.1, 1e-6, 1e-6], [1e-6, 1e-6, 1e-6]], dtype=torch.float64)
    assert torch.allclose(clipped_l2_normalize(x), expected, rtol=1e-12, atol=0)  # float64 rounding only


def test_clipped_normalisation_against_the_seed_ops_and_its_gradient():
    torch.manual_seed(0)
    x = torch.randn(5, 12, dtype=torch.float64, requires_grad=True)
    out = clipped_l2_normalize(x)
    expected = torch.tensor([seed_normalize(row) for row in x.tolist()], dtype=torch.float64)
    assert torch.allclose(out, expected, rtol=1e-12, atol=0)  # float64 rounding only
    assert (out >= 1e-6).all() and (out.norm(dim=1) < 1).all()  # non-negative; the clipped share of the norm gone
    out[x < 0].sum().backward()  # the clipped components are constants: no gradient reaches any input
    assert torch.equal(x.grad, torch.zeros_like(x))
    assert clipped_l2_normalize(x.detach().to(torch.bfloat16)).dtype == torch.float32  # half input: float32


def test_cgd_model_keeps_the_standard_strides_and_adds_the_classifier():
    model = CGDTF("resnet18", "S", 16, 5, pretrained=False).eval()
    assert model.trunk[6][0].conv1.stride == (2, 2)  # layer3 still halves (CGD's trunk sets 1 here)
    with torch.no_grad():
        assert model.trunk(torch.randn(1, 3, 64, 64)).shape == (1, 512, 2, 2)  # 64 / 32
        embedding, logits = model(torch.randn(3, 3, 64, 64))
    assert embedding.shape == (3, 16) and logits.shape == (3, 5)


def test_cgd_model_embedding_follows_the_seed_ops():
    torch.manual_seed(0)
    model = CGDTF("resnet18", "SM", 8, 3, pretrained=False).double().eval()
    images = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        embedding, logits = model(images)
        features = model.trunk(images)
    s, m = features.mean(dim=(2, 3)).tolist(), features.amax(dim=(2, 3)).tolist()
    expected = []
    for i in range(2):  # per image: each branch Dense (with bias) + the seed's normalisation, concatenated, again
        branches = [seed_normalize([sum(w * v for w, v in zip(row, d[i])) + b for row, b in
                                    zip(head.weight.tolist(), head.bias.tolist())])
                    for d, head in zip((s, m), model.heads)]
        expected.append(seed_normalize(branches[0] + branches[1]))
    # float64, a python loop against the kernels: sums of 512 products in another order round at 1e-16 of the
    # terms; 1e-10 relative leaves room for the cancellation in those sums and the two normalisations.
    assert torch.allclose(embedding, torch.tensor(expected, dtype=torch.float64), rtol=1e-10, atol=0)
    assert (embedding >= 1e-6).all()
    with torch.no_grad():  # the classifier reads the first (S) branch, as the seed's reads its SPoC branch
        first = clipped_l2_normalize(model.heads[0](features.mean(dim=(2, 3))))
        # float64: the same ops on the same values as the forward's; 1e-12 relative is rounding's bound
        assert torch.allclose(logits, model.classifier(first), rtol=1e-12, atol=0)


def test_descriptor_branches_have_a_bias_and_glorot_uniform_weights():
    torch.manual_seed(0)
    model = CGDTF("resnet18", "S", 256, 3, pretrained=False)
    (head,) = model.heads
    assert head.bias is not None and torch.equal(head.bias, torch.zeros(256))  # Keras's zero bias
    bound = math.sqrt(6 / (512 + 256))  # Glorot uniform: U(-b, b), b = sqrt(6 / (fan_in + fan_out)) = 0.0884
    w = head.weight.detach().double().flatten()  # 131,072 draws
    assert w.abs().max() <= bound and w.abs().max() > 0.999 * bound
    # U(-b, b) has variance b^2 / 3; the sample mean of w^2 has a relative s.d. of sqrt(4/45) / (1/3) / sqrt(n) =
    # 0.25%: 2% is 8 s.d. (PyTorch's default init, bound 1 / sqrt(512) = 0.0442, is 4x smaller in variance).
    assert w.square().mean().item() == pytest.approx(bound ** 2 / 3, rel=0.02)
    # Half the draws lie within b / 2 (uniform); s.d. of the share 0.5 / sqrt(n) = 0.14%: 1% is 7 s.d.
    assert (w.abs() < bound / 2).double().mean().item() == pytest.approx(0.5, abs=0.01)


def test_the_classifier_is_the_seeds_head():
    head = AuxiliaryClassifier(16, 7)
    dense1, swish, bn, dense2 = head
    assert (dense1.in_features, dense1.out_features, dense2.in_features, dense2.out_features) == (16, 7, 7, 7)
    assert isinstance(swish, nn.SiLU) and isinstance(bn, nn.BatchNorm1d)
    assert bn.eps == 1e-3 and bn.momentum == 0.01  # Keras's BatchNormalization defaults
    assert torch.equal(dense1.bias, torch.zeros(7)) and torch.equal(dense2.bias, torch.zeros(7))
    assert dense2.weight.abs().max() <= math.sqrt(6 / 14)  # Glorot uniform
    x = torch.randn(4, 16)
    head.eval()
    manual = dense2(bn(F.silu(dense1(x))))
    assert torch.equal(head(x), manual)  # logits: the softmax belongs to the loss


@pytest.mark.parametrize("model", ["cgd", "reference"])
def test_the_classifier_leaves_the_embedding_alone(model):
    torch.manual_seed(0)
    net = (CGDTF("resnet18", "S", 8, 4, pretrained=False) if model == "cgd"
           else ReferenceHead("resnet18", 8, 4, 64, pretrained=False)).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before, _ = net(images)
        for p in net.classifier.parameters():
            p.add_(1.0)
        after, _ = net(images)
    assert torch.equal(before, after)


def test_reference_head_layers_follow_the_seed():
    model = ReferenceHead("resnet18", 24, 6, 64, pretrained=False)
    conv512, act1, conv128, act2 = model.convs
    dense1024, act3, bn, dense = model.dense
    assert (conv512.in_channels, conv512.out_channels, conv512.kernel_size) == (512, 512, (1, 1))
    assert (conv128.in_channels, conv128.out_channels, conv128.kernel_size) == (512, 128, (1, 1))
    assert all(isinstance(a, nn.SiLU) for a in (act1, act2, act3))  # swish
    assert model.grid == (2, 2) and dense1024.in_features == 128 * 2 * 2 and dense1024.out_features == 1024
    assert isinstance(bn, nn.BatchNorm1d) and bn.eps == 1e-3 and bn.momentum == 0.01  # Keras's defaults
    assert (dense.in_features, dense.out_features) == (1024, 24)
    assert all(torch.equal(layer.bias, torch.zeros_like(layer.bias)) for layer in (conv512, conv128, dense1024, dense))
    assert (model.classifier[0].in_features, model.classifier[3].out_features) == (24, 6)


def test_reference_head_is_not_normalised_and_its_classifier_reads_the_embedding():
    torch.manual_seed(0)
    model = ReferenceHead("resnet18", 24, 6, 64, pretrained=False).eval()
    with torch.no_grad():
        embedding, logits = model(torch.randn(4, 3, 64, 64))
        large, _ = model(torch.randn(1, 3, 224, 224))  # 7 x 7 features, average-pooled to 2 x 2
        assert torch.equal(logits, model.classifier(embedding))
    # Unit norms would be 1 within float32's 1e-6; this head's are 2.1-2.5 (measured): 1e-2 tells them apart.
    assert embedding.shape == (4, 24) and not torch.allclose(embedding.norm(dim=1), torch.ones(4), atol=1e-2)
    assert (embedding < 0).any()  # the seed's reference embedding is not clipped either
    assert large.shape == (1, 24)


def test_the_grid_probe_leaves_batchnorm_statistics_and_the_mode_alone():
    model = ReferenceHead("resnet18", 8, 3, 96, pretrained=False)
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
