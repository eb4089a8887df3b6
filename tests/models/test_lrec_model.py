import copy
import math

import pytest
import torch
import torch.nn.functional as F

from dmlbench.losses.meta_class_ce import meta_class_cross_entropy
from dmlbench.models.lrec import LREC, build_pair, ensemble_embedding, stem_and_learners
from dmlbench.models.meta_classes import assign_meta_classes
from dmlbench.reporting.complexity import count_params

# The seed's parameter table: backbone -> (CARS196 and CUB200, SOP, In-shop), 48 learners.
SEED_PARAMS = {"resnet18": (529_365_376, 541_677_376, 533_797_696),
               "resnet34": (1_011_079_808, 1_023_391_808, 1_015_512_128),
               "resnet50": (1_118_974_592, 1_168_150_592, 1_136_677_952),
               "resnext50": (1_094_093_696, 1_143_269_696, 1_111_797_056)}
DATASETS = ((98, 12), (11318, 512), (3997, 192))  # training classes, the seed's meta classes


def pair(backbone, learners=3, classes=10, meta=4, seed=0, execution="fused"):
    """The LREC model (run in ``execution`` form) and the reference of E separate modules, same weights."""
    torch.manual_seed(seed)
    model, loop = build_pair(backbone, False, learners, assign_meta_classes(classes, meta, learners, seed), meta)
    model.execution = execution
    return model, loop


def compare(fused, loop, training, dtype, tol):
    """Both forms' logits and embeddings on one batch, equal within ``tol`` of the logits' largest magnitude."""
    fused.to(dtype).train(training), loop.to(dtype).train(training)
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(dtype)
    embedding, logits, meta = fused(images)
    loop_embedding, loop_logits, loop_meta = loop(images)
    assert logits.shape == (4, len(loop.learners), 4) and embedding.shape == (4, 4 * len(loop.learners))
    torch.testing.assert_close(logits, loop_logits, rtol=0, atol=tol * loop_logits.abs().max().item())
    torch.testing.assert_close(embedding, loop_embedding, rtol=0, atol=tol)  # unit vectors: scale 1
    assert torch.equal(meta, loop_meta)
    return logits, loop_logits


# The fused form (grouped convolutions over every learner) against E separate modules is an equality of two
# algorithms: compared in float64, where both agree to ~1e-15 of the scale whatever the kernels (1e-10 leaves room
# for training-mode BatchNorm, whose 1/std over a batch of 4 amplifies rounding). In float32 the two forms run
# different kernels, whose rounding differs by CPU ISA and which BatchNorm amplifies (5e-4 seen in training mode).
@pytest.mark.parametrize("execution", ["fused", "loop"])
@pytest.mark.parametrize("training", [True, False])
def test_fused_equals_the_loop(training, execution):
    fused, loop = pair("resnet18", execution=execution)
    logits, loop_logits = compare(fused, loop, training, torch.float64, 1e-10)
    labels = torch.tensor([0, 3, 7, 9])
    meta_class_cross_entropy(logits, fused.meta_labels, labels).backward()
    meta_class_cross_entropy(loop_logits, loop.meta_labels, labels).backward()
    # Learner 1's last conv of layer4: the fused gradient's slice equals the loop learner's own gradient.
    fused_conv, loop_conv = fused.learners[2][-1].conv2, loop.learners[1][2][-1].conv2
    for ours, theirs in ((fused_conv.weight.grad[512:1024], loop_conv.weight.grad),
                         (fused.heads.weight.grad[1], loop.heads[1].weight.grad)):
        # float64 gradients by two algorithms: rounding of ~1e-15 relative, which the backward through the
        # training-mode BatchNorms amplifies as the forward's; 1e-9 relative plus 1e-10 of the largest leaves room.
        torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-10 * theirs.abs().max().item())


def test_float32_forms_agree_to_float32_rounding():
    # What runs in practice: in eval mode (no batch statistics to amplify it) the float32 roundings of the two
    # kernels stay near 1e-6 of the logits' scale on any ISA; 1e-4 bounds that, and a wrong slice of the fused
    # weights moves a logit by its own size.
    fused, loop = pair("resnet18")
    compare(fused, loop, False, torch.float32, 1e-4)


@pytest.mark.slow  # four float64 bottleneck networks; the fast tier compares the fused form on ResNet-18 above
@pytest.mark.parametrize("execution", ["fused", "loop"])
@pytest.mark.parametrize("backbone", ["resnet50", "resnext50"])
def test_fused_bottlenecks_equal_the_loop(backbone, execution):
    # As test_fused_equals_the_loop, for the bottleneck blocks (resnext50: grouped 3x3 convolutions in each learner).
    fused, loop = pair(backbone, learners=2, execution=execution)
    compare(fused, loop, True, torch.float64, 1e-10)


@pytest.mark.parametrize("execution", ["fused", "loop"])
def test_training_updates_each_learners_batchnorm_statistics_as_the_loop(execution):
    fused, loop = pair("resnet18", execution=execution)
    fused.double().train(), loop.double().train()
    images = torch.randn(4, 3, 32, 32, dtype=torch.float64)
    fused(images), loop(images)
    bn = fused.learners[1][0].bn1  # layer3, block 0: 256 channels per learner
    for e in range(3):
        # float64, two algorithms (see above): 0.1 x a batch mean of O(1) values agrees to far better than 1e-12.
        torch.testing.assert_close(bn.running_mean[256 * e:256 * (e + 1)], loop.learners[e][1][0].bn1.running_mean,
                                   rtol=0, atol=1e-12)


def test_the_cpu_runs_the_learners_one_by_one_and_other_devices_fused():
    model, _ = pair("resnet18", learners=2, execution="auto")
    assert not model.runs_fused(torch.zeros(1)) and model.runs_fused(torch.zeros(1, device="meta"))
    model.execution = "fused"
    assert model.runs_fused(torch.zeros(1))
    model.execution = "loop"
    assert not model.runs_fused(torch.zeros(1, device="meta"))
    model.execution = "grouped"
    with pytest.raises(ValueError, match="LREC.execution must be auto, fused or loop, got 'grouped'"):
        model(torch.zeros(1, 3, 32, 32))


def test_both_forms_take_the_same_training_step_on_one_state_dict():
    # The loop form reads slices of the fused weights: after one step (forward, backward, SGD) of each form from
    # the same start, every weight, statistic and counter agrees, and nothing else enters the state dict. (SGD,
    # not Adam: Adam's first step is lr x sign(gradient), which float rounding flips where a gradient is ~0.)
    # In float64: the two forms run different kernels (one grouped convolution vs E plain ones), whose float32
    # rounding differs per CPU ISA and training-mode BatchNorm over 4 samples amplifies (it failed at 1e-4 on AMX).
    fused, _ = pair("resnet18")
    fused.double()
    looped = copy.deepcopy(fused)
    looped.execution = "loop"
    images, labels = torch.randn(4, 3, 32, 32, dtype=torch.float64), torch.tensor([0, 3, 7, 9])
    for model in (fused, looped):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        _, logits, meta = model.train()(images)
        meta_class_cross_entropy(logits, meta, labels).backward()
        optimizer.step()
    for (name, a), (_, b) in zip(fused.named_parameters(), looped.named_parameters()):
        # The same sums in another order (the stem's gradient adds the learners' differently): float64 rounding
        # (~1e-16 relative), amplified by the BatchNorms' 1/std over 4 samples, stays far below 1e-9 of the scale.
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-9 * a.grad.abs().max().item(), msg=name)
    state, looped_state = fused.state_dict(), looped.state_dict()
    assert list(state) == list(looped_state) and not any("one_learner" in key for key in state)
    for name in state:
        # Weights and statistics are O(1) after one step of lr 0.1: the gradients' 1e-9 bound times lr and more.
        torch.testing.assert_close(state[name], looped_state[name], rtol=0, atol=1e-10, msg=name)
    assert looped_state["learners.2.1.bn2.num_batches_tracked"].item() == 1


def test_one_dot_product_is_the_mean_of_the_learners_cosines():
    logits = torch.randn(5, 4, 7, dtype=torch.float64)
    embedding = ensemble_embedding(logits)
    # float64 unit norms: assert_close's float64 default (1e-7 relative) is loose; the rounding is 1e-16.
    torch.testing.assert_close(embedding.norm(dim=1), torch.ones(5, dtype=torch.float64), rtol=0, atol=1e-12)
    for i in range(5):
        for j in range(5):
            cosines = [F.cosine_similarity(logits[i, e], logits[j, e], dim=0) for e in range(4)]
            # float64, two routes to the same cosine: roundings of 1e-16.
            assert (embedding[i] @ embedding[j]).item() == pytest.approx(sum(cosines).item() / 4, abs=1e-12)


def test_counting_a_small_build_equals_its_arithmetic_and_the_meta_build():
    learners, meta = 2, 5
    fused, loop = pair("resnet18", learners, classes=12, meta=meta)
    stem = 9408 + 128 + 147_968  # conv1, bn1, layer1 of ResNet-18
    per_learner = 11_176_512 - stem + 512 * meta + meta  # layer2-4 and Linear(512 -> meta) with bias
    assert count_params(fused) == count_params(loop) == stem + learners * per_learner
    with torch.device("meta"):
        on_meta = LREC(*stem_and_learners("resnet18", False, learners, meta), assign_meta_classes(12, meta, 2, 0))
    assert count_params(on_meta) == count_params(fused)


@pytest.mark.parametrize("backbone", SEED_PARAMS)
@pytest.mark.parametrize("column", range(3))
def test_the_seeds_parameter_table_without_allocating(backbone, column):
    classes, meta = DATASETS[column]
    with torch.device("meta"):
        model = LREC(*stem_and_learners(backbone, False, 48, meta), assign_meta_classes(classes, meta, 48, 0))
    assert count_params(model) == SEED_PARAMS[backbone][column]


def test_pretrained_learners_start_equal(monkeypatch):
    from dmlbench.models import lrec as lrec_module

    real = lrec_module.build_backbone
    monkeypatch.setattr(lrec_module, "build_backbone", lambda name, pretrained: real(name, False))
    model = LREC(*stem_and_learners("resnet18", True, 3, 4), assign_meta_classes(10, 4, 3, 0))
    weight = model.learners[2][-1].conv2.weight  # 3 x 512 output channels
    assert torch.equal(weight[:512], weight[512:1024]) and torch.equal(weight[:512], weight[1024:])
    scratch = LREC(*stem_and_learners("resnet18", False, 3, 4), assign_meta_classes(10, 4, 3, 0))
    assert not torch.equal(scratch.learners[2][-1].conv2.weight[:512], scratch.learners[2][-1].conv2.weight[512:1024])


def test_meta_labels_travel_in_the_state_dict():
    fused, _ = pair("resnet18")
    assert torch.equal(fused.state_dict()["meta_labels"], torch.as_tensor(assign_meta_classes(10, 4, 3, 0)))
    record = fused.readable_record([5, 6, 7, 8, 9, 10, 11, 12, 13, 14])
    assert record["classes"] == "5 6 7 8 9 10 11 12 13 14" and len(record["meta_labels_per_learner"]) == 3
    assert record["meta_labels_per_learner"][0] == " ".join(map(str, fused.meta_labels[0].tolist()))


def test_ensemble_embedding_divides_by_sqrt_of_learners():
    logits = torch.tensor([[[3.0, 4.0], [0.0, 2.0]]])
    expected = torch.tensor([[0.6, 0.8, 0.0, 1.0]]) / math.sqrt(2)
    # float32: 3-4-5 norms are exact, the / sqrt(2) rounds once (6e-8): assert_close's float32 default (1.3e-6).
    torch.testing.assert_close(ensemble_embedding(logits), expected)
