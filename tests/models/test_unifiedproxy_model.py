import pytest
import torch
import torch.nn.functional as F

from torchvision.models import googlenet

from dmlbench.models.unifiedproxy import UnifiedProxy
from dmlbench.reporting.complexity import count_params

# The trunks' parameters: torchvision's totals without the 1000-class fc (ResNet-50 25,557,032 - 2,049,000;
# GoogLeNet without aux heads 6,624,904 - 1,025,000), BN-Inception's 11,295,240 - 1,025,000.
TRUNKS = {"resnet18": 11_176_512, "resnet50": 23_508_032, "googlenet": 5_599_904, "bn_inception": 10_270_240}
CHANNELS = {"resnet18": 512, "resnet50": 2048, "googlenet": 1024, "bn_inception": 1024}


@pytest.mark.parametrize(("backbone", "classes"), [("resnet50", 98), ("resnet50", 100), ("googlenet", 98),
                                                   ("bn_inception", 100)])
def test_parameter_count_is_trunk_plus_embedding_plus_proxies(backbone, classes):
    # Linear(C -> 512) without bias, classes x 512 proxies, layer norm without affine parameters: nothing else.
    # ResNet-50 on CARS: 23,508,032 + 2048 x 512 + 98 x 512 = 24,606,784.
    model = UnifiedProxy(backbone, 512, classes, pretrained=False, freeze_bn=True, seed=0)
    assert count_params(model) == TRUNKS[backbone] + CHANNELS[backbone] * 512 + classes * 512
    if (backbone, classes) == ("resnet50", 98):
        assert count_params(model) == 24_606_784
    outside = {name for name, _ in model.named_parameters() if not name.startswith("trunk.")}
    assert outside == {"embedding.weight", "proxies"} and model.embedding.bias is None


def head_in_float64(model: UnifiedProxy, pooled: torch.Tensor) -> torch.Tensor:
    """The head spelled out in float64 from the trunk's pooled features: layer norm without affine, Linear
    without bias, L2 (the model runs it in float32 whatever the input's dtype, so it cannot run in float64)."""
    pooled = pooled.double()
    return F.normalize(F.linear(F.layer_norm(pooled, pooled.shape[1:]), model.embedding.weight.double()), dim=1)


# The model's head runs in float32, so it is checked against the float64 formula at float32's accuracy:
# - the embedding: a layer norm and a Linear over C = 512-1024 features; measured within 1.5e-7 of float64 on
#   this Xeon, default ISA and ONEDNN_MAX_CPU_ISA=AVX2 alike. 1e-5 leaves ~70x for other kernels' summation order,
#   and a head without its layer norm is off by >= 0.16.
# - norms and cosines of unit vectors of 16 values: every n-term float32 sum rounds by at most n x 2^-24 of the
#   sum of |terms|, which Cauchy-Schwarz keeps <= 1 here: <= 2e-6 with the normalisations' own roundings, on any
#   CPU. 5e-6 is that bound with room.
@pytest.mark.parametrize("backbone", ["resnet18", "googlenet", "bn_inception"])
def test_forward_gives_unit_embeddings_and_proxy_cosines(backbone):
    torch.manual_seed(0)
    model = UnifiedProxy(backbone, 16, 5, pretrained=False, freeze_bn=True, seed=0).eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        embedding, cosines = model(x)
        expected = head_in_float64(model, model.trunk(x).amax(dim=(2, 3)))  # global max pooling, then the head
    assert embedding.shape == (3, 16) and cosines.shape == (3, 5) and embedding.dtype == torch.float32
    torch.testing.assert_close(embedding.double(), expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(embedding.norm(dim=1), torch.ones(3), rtol=0, atol=5e-6)
    proxies = F.normalize(model.proxies.double(), dim=1)
    torch.testing.assert_close(cosines.double(), embedding.double() @ proxies.T, rtol=0, atol=5e-6)
    assert cosines.abs().max() <= 1 + 5e-6  # |cosine| <= 1 exactly, plus the float32 bound above


def test_proxies_come_from_the_run_seed_alone():
    first = UnifiedProxy("resnet18", 8, 4, pretrained=False, freeze_bn=True, seed=3).proxies
    torch.manual_seed(123)  # the global generator (the backbone's init) does not move them
    again = UnifiedProxy("resnet18", 8, 4, pretrained=False, freeze_bn=True, seed=3).proxies
    other = UnifiedProxy("resnet18", 8, 4, pretrained=False, freeze_bn=True, seed=4).proxies
    assert torch.equal(first, again) and not torch.equal(first, other)
    # The seed lineage's init: Gaussian rows scaled to unit length (written here from the seed's formula).
    assert torch.equal(first, F.normalize(torch.randn(4, 8, generator=torch.Generator().manual_seed(3)), dim=-1))
    # float32 unit rows: |1 - norm| within a few ulps of 1 (2^-23 ~ 1.2e-7 each)
    torch.testing.assert_close(first.norm(dim=1), torch.ones(4), rtol=0, atol=1e-6)


@pytest.mark.parametrize("freeze_bn", [True, False])
def test_batchnorm_statistics_frozen_only_when_asked(freeze_bn):
    model = UnifiedProxy("resnet18", 8, 4, pretrained=False, freeze_bn=freeze_bn, seed=0).train()
    before = {k: v.clone() for k, v in model.trunk.state_dict().items() if "running" in k}
    model(torch.randn(4, 3, 32, 32))
    after = model.trunk.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before) == freeze_bn
    assert model.training and model.trunk[1].training != freeze_bn  # the trunk's bn1 in eval mode when frozen


def test_the_head_stays_float32_under_autocast():
    model = UnifiedProxy("resnet18", 8, 4, pretrained=False, freeze_bn=True, seed=0).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        embedding, cosines = model(x)
        pooled = model.trunk(x)
    assert pooled.dtype == torch.bfloat16  # the trunk runs in bf16
    assert embedding.dtype == cosines.dtype == torch.float32


def test_head_parameters_are_the_embedding_layer_and_the_proxies():
    model = UnifiedProxy("resnet18", 8, 4, pretrained=False, freeze_bn=True, seed=0)
    assert [id(p) for p in model.head_parameters()] == [id(model.embedding.weight), id(model.proxies)]


def test_googlenet_drops_pooled_features_in_training_as_torchvisions_forward():
    # torchvision's GoogLeNet applies its Dropout between the pooling and the classifier the seed replaced.
    torchvision_p = googlenet(weights=None, aux_logits=False, init_weights=False).dropout.p
    model = UnifiedProxy("googlenet", 16, 5, pretrained=False, freeze_bn=True, seed=0).train()
    assert model.dropout.p == torchvision_p == 0.2
    x = torch.randn(8, 3, 64, 64)
    with torch.no_grad():
        pooled = model.trunk(x).amax(dim=(2, 3))  # the trunk draws no random numbers (frozen BN, no dropout)
        torch.manual_seed(5)
        embedding, cosines = model(x)
        torch.manual_seed(5)
        dropped = F.dropout(pooled, 0.2, training=True)  # the same draws from the same global generator
        # the float32 head against its float64 formula: 1e-5, as in the forward test above
        torch.testing.assert_close(embedding.double(), head_in_float64(model, dropped), rtol=0, atol=1e-5)
        live = pooled > 0  # ReLU outputs: a zero before dropout tells nothing
        zeroed = (dropped[live] == 0).float().mean().item()
        # Bernoulli(0.2) per feature: with n >= 4096 live features sd <= sqrt(0.2 x 0.8 / 4096) ~ 0.0063; 5 sd.
        assert live.sum() >= 4096 and abs(zeroed - 0.2) < 0.032
        assert not torch.equal(model(x)[0], embedding)  # another draw, another embedding
        model.eval()
        assert torch.equal(model(x)[0], model(x)[0])  # no dropout at test time


@pytest.mark.parametrize("backbone", ["resnet18", "bn_inception"])
def test_other_backbones_have_no_dropout(backbone):
    model = UnifiedProxy(backbone, 8, 4, pretrained=False, freeze_bn=True, seed=0).train()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert model.dropout.p == 0 and torch.equal(model(x)[0], model(x)[0])
