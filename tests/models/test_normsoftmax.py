import pytest
import torch

from dmlbench.reporting.complexity import count_flops, count_params
from dmlbench.models.normsoftmax import CosineClassifier, NormSoftmax


@pytest.mark.parametrize(("classes", "params"), [(98, 27_905_088), (11_318, 50_883_648), (3_997, 35_890_240)])
def test_parameter_counts_match_the_seed_table(classes, params):
    # The NormSoftmax seed's table: 27.91M (CARS, 98 classes), 50.88M (SOP), 35.89M (In-shop).
    assert count_params(NormSoftmax("resnet50", 2048, classes, pretrained=False)) == params


def test_flops_match_the_seed_for_every_dataset():
    # 4.12G everywhere: the cosine classifier holds a bare Parameter, which thop's 2020 rules count as 0.
    for classes in (98, 3_997):
        assert count_flops(NormSoftmax("resnet50", 2048, classes, pretrained=False), 224, "seed") == 4_117_855_232


def test_forward_gives_unit_embeddings_and_cosine_logits():
    torch.manual_seed(0)
    # float64: the norms and the cosines below are sums of 16 products, which float32 rounds differently with each
    # vector width (up to ~1e-6); in float64 they agree to 1e-12 whatever the kernels.
    model = NormSoftmax("resnet18", 16, 5, pretrained=False).eval().double()
    embedding, logits = model(torch.randn(3, 3, 64, 64, dtype=torch.float64))
    assert embedding.shape == (3, 16) and logits.shape == (3, 5)
    assert torch.allclose(embedding.norm(dim=1), torch.ones(3, dtype=torch.float64), rtol=0, atol=1e-12)
    weights = torch.nn.functional.normalize(model.classifier.weight, dim=1)
    assert torch.allclose(logits, embedding @ weights.T, rtol=0, atol=1e-12)
    assert logits.abs().max() <= 1 + 1e-12


def test_head_parameters_are_the_embedding_layer_and_the_classifier():
    model = NormSoftmax("resnet18", 16, 5, pretrained=False)
    head = {id(p) for p in model.head_parameters()}
    assert head == {id(model.embedding.weight), id(model.embedding.bias), id(model.classifier.weight)}


def test_classifier_starts_from_pytorchs_default_linear_init():
    """kaiming_uniform(a=sqrt(5)) draws U(-1/sqrt(D), 1/sqrt(D)): rows of norm ~ sqrt(1/3) = 0.577 for any D, the
    seed's scale (xavier gave 1.38 with 98 classes); the row norm sets each class's angular learning speed."""
    torch.manual_seed(0)
    weight = CosineClassifier(2048, 98).weight
    assert weight.abs().max() <= 1 / 2048 ** 0.5
    # A statistical bound, not a rounding one: each row norm is sqrt(1/3) +- 0.006 (2048 uniform draws), their mean
    # over 98 rows +- 0.0006; 0.01 is ~17 of those, and the xavier scale (1.38) is far outside it.
    assert weight.norm(dim=1).mean().item() == pytest.approx(3 ** -0.5, abs=0.01)
