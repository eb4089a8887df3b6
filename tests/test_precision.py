"""Mixed precision, channels_last and torch.compile give fp32's results within tolerance; the params are checked."""

import functools
import shutil

import pytest
import torch
from torch import nn

from dmlbench.errors import DmlbenchError
from dmlbench.methods import get_method
from dmlbench.methods.cgd import CGDConfig
from dmlbench.methods.normsoftmax import NormSoftmaxConfig
from dmlbench.methods.optimization import Optimization
from dmlbench.models.precision import loader_options, resolve_precision
from dmlbench.params.load import section
from dmlbench.params.sections import EmbedConfig, TrainConfig
from dmlbench.retrieval.embedding import embed_images
from dmlbench.training.checkpoint import Progress, load_checkpoint, save_checkpoint
from dmlbench.training.step import TrainStep

CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # a cuda device object needs no GPU until used
CGD = CGDConfig(gd_config="SG", feature_dim=32, smoothing=0.1, temperature=0.5, margin=0.1, freeze_bn=False,
                classes_per_batch=2, images_per_class=2, lr=1e-3, epochs=2, lr_milestones=(0.5,),
                lr_gamma=0.1, train_resize=36, train_crop=32, test_resize=32)
NSM = NormSoftmaxConfig(feature_dim=16, temperature=0.05, classes_per_batch=2, images_per_class=2, lr=0.01,
                        momentum=0.9, weight_decay=1e-4, warmup_epochs=1, epochs=0, lr_step_fraction=0.5,
                        lr_gamma=0.1, train_resize=36, train_crop=32, test_resize=36, test_crop=32)
CONFIGS = {"cgd": CGD, "normsoftmax": NSM}


def batch(size: int = 32, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.randn(8, 3, size, size, generator=torch.Generator().manual_seed(1))
    return images.to(dtype), torch.arange(4).repeat_interleave(2)  # float64: the same values, widened


def one_step(model: nn.Module, loss, precision="fp32", channels_last=False, compile=False, dtype=torch.float32):
    """Loss terms and parameter gradients of one batch through TrainStep (the model and batch in ``dtype``)."""
    model.to(dtype)
    step = TrainStep(model, loss, CPU, precision, channels_last, compile)
    model.train()
    values, _, _ = step.backward(*batch(dtype=dtype), torch.optim.SGD(model.parameters(), lr=0.1))
    return values, {k: p.grad for k, p in model.named_parameters() if p.grad is not None}


def method_step(name: str, **options):
    torch.manual_seed(0)  # the same initial weights for every variant
    method, cfg = get_method(name), CONFIGS[name]
    return one_step(method.build_model(cfg, "resnet18", 4, False, 0), functools.partial(method.loss, cfg), **options)


# Memory layout and compilation change the kernels, not the arithmetic: equalities of two algorithms, compared in
# float64, where both sides agree to ~1e-15 whatever the CPU (in float32 the kernels' rounding differs per ISA and
# training-mode BatchNorm over 8 images amplifies it). TrainStep hands the loss float32 outputs, so the loss terms
# carry float32's rounding of nearly equal values (1e-6 relative bounds it); the gradients flow back in float64.
LOSS_RTOL, GRAD_RTOL = 1e-6, 1e-9


def assert_close_grads(ours: dict, reference: dict, rtol: float) -> None:
    """Each gradient within ``rtol``, plus ``rtol`` of the largest one anywhere (near-zero ones are rounding)."""
    assert ours.keys() == reference.keys()
    atol = rtol * max(grad.abs().max().item() for grad in reference.values())
    for name, grad in reference.items():
        assert torch.allclose(ours[name], grad, rtol=rtol, atol=atol), name


def test_auto_precision_is_fp32_on_cpu_and_follows_the_gpu(monkeypatch):
    assert resolve_precision("auto", CPU, "train.precision") == "fp32"
    assert resolve_precision("bf16", CPU, "train.precision") == "bf16"  # CPU autocast has bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert resolve_precision("auto", CUDA, "train.precision") == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    assert resolve_precision("auto", CUDA, "train.precision") == "fp16"
    with pytest.raises(DmlbenchError, match=r"^params.yaml: embed.precision = bf16 needs a GPU with native"):
        resolve_precision("bf16", CUDA, "embed.precision")


@pytest.mark.parametrize("name, cls", [("train", TrainConfig), ("embed", EmbedConfig)])
def test_a_bad_precision_gives_one_clear_error(name, cls):
    values = {"device": "cpu", "workers": 0, "pretrained": False, "deterministic": False,
              "checkpoint_every_steps": 0} if name == "train" else {"batch_size": 4, "workers": 0}
    assert section({name: values}, name, cls).precision == "auto"  # the default
    with pytest.raises(DmlbenchError) as error:
        section({name: {**values, "precision": "fp64"}}, name, cls)
    assert str(error.value) == f"params.yaml: {name}.precision must be one of auto, fp32, bf16, fp16, got 'fp64'"


# What the format guarantees, not what one CPU gave: bf16 keeps 8 mantissa bits (0.4 % per rounding), and
# NormSoftmax's 1/0.05 temperature turns a cosine's 0.4 % into 8 % of a logit; fp16 keeps 11 bits, 1 % after the
# same amplification. Three times that leaves room for the kernels (AMX, AVX512-BF16 or emulated bf16 round their
# sums differently; 10 % was seen for bf16 on another batch), while a loss that lost the temperature, the
# normalisation or a term is off by far more; a step that ignored autocast fails the != below.
@pytest.mark.parametrize("name", ["cgd", "normsoftmax"])
@pytest.mark.parametrize("precision, rel", [("bf16", 0.25),
                                            pytest.param("fp16", 0.03, marks=pytest.mark.slow)])  # CPU fp16: slow
def test_autocast_gives_the_fp32_loss_within_tolerance(name, precision, rel):
    reference, _ = method_step(name)
    ours, _ = method_step(name, precision=precision)
    assert ours.keys() == reference.keys()
    assert all(ours[k] == pytest.approx(reference[k], rel=rel) for k in reference)
    assert ours != reference  # autocast did run at the lower precision


def test_the_loss_sees_float32_outputs_under_autocast():
    seen = []

    def loss(outputs, labels):
        seen.extend(output.dtype for output in outputs)
        return {"loss": outputs[0].sum() + outputs[1].sum()}

    one_step(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), Pair()), loss, precision="bf16")
    assert seen == [torch.float32, torch.float32]


class Pair(nn.Module):
    """(embedding, logits) of a flat vector, as the methods' models return."""

    def forward(self, x):
        return nn.functional.normalize(x[:, :8], dim=1), x[:, :4]


@pytest.mark.parametrize("name", ["cgd", "normsoftmax"])
def test_channels_last_gives_the_same_loss_and_gradients(name):
    reference, reference_grads = method_step(name, dtype=torch.float64)
    ours, grads = method_step(name, channels_last=True, dtype=torch.float64)
    assert all(ours[k] == pytest.approx(reference[k], rel=LOSS_RTOL) for k in reference)
    assert_close_grads(grads, reference_grads, rtol=GRAD_RTOL)


def test_channels_last_lays_out_weights_and_batches_nhwc():
    conv, seen = nn.Conv2d(3, 4, 3), []
    conv.register_forward_pre_hook(lambda module, args: seen.append(args[0].is_contiguous(
        memory_format=torch.channels_last)))
    one_step(nn.Sequential(conv, nn.Flatten(), Pair()), lambda outputs, labels: {"loss": outputs[1].sum()},
             channels_last=True)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and seen == [True]


def test_fp16_scaler_skips_a_step_with_overflowing_gradients_and_backs_off():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), Pair())
    before = [p.detach().clone() for p in model.parameters()]
    step = TrainStep(model, lambda outputs, labels: {"loss": outputs[1].sum() * 1e35}, CPU, "fp16")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    values, _, _ = step.backward(*batch(), optimizer)  # finite loss; x 65536 overflows: gradients are inf
    step.step(optimizer)
    assert all(torch.isfinite(torch.tensor(v)) for v in values.values())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # the step was skipped
    assert step.scaler.get_scale() == 2.0**15  # and the scale halved


def test_scaler_state_round_trips_through_the_checkpoint(tmp_path):
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    optimization = Optimization(optimizer, torch.optim.lr_scheduler.StepLR(optimizer, 1))
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=7)
    for _ in range(3):  # finite steps advance the growth counter
        scaler.scale(model(torch.ones(1, 2)).sum()).backward()
        scaler.step(optimizer)
        scaler.update()
    save_checkpoint(tmp_path / "c.pt", "key", Progress(), model, optimization, scaler)
    restored = torch.amp.GradScaler("cpu")
    restored.load_state_dict(load_checkpoint(tmp_path / "c.pt", "key")["scaler"])
    assert restored.state_dict() == scaler.state_dict() == {
        "scale": 1024.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 7, "_growth_tracker": 3}


@pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++")), reason="torch.compile on CPU needs a C++ "
                    "compiler for inductor's kernels")
def test_compiled_forward_equals_eager_and_keeps_the_state_dict_keys():
    """On a small conv net: compiling the resnet18 models on 2 CPU cores takes minutes (about 140 s here)."""
    def build():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                             nn.Flatten(), Pair())

    loss = functools.partial(get_method("cgd").loss, CGD)
    reference, reference_grads = one_step(build(), loss, dtype=torch.float64)
    model = build()
    ours, grads = one_step(model, loss, compile=True, dtype=torch.float64)
    assert all(ours[k] == pytest.approx(reference[k], rel=LOSS_RTOL) for k in reference)
    assert_close_grads(grads, reference_grads, rtol=GRAD_RTOL)
    assert set(model.state_dict()) == set(build().state_dict())  # no "_orig_mod." prefix in checkpoints


def test_bf16_channels_last_embeddings_match_fp32():
    torch.manual_seed(0)
    model = get_method("cgd").build_model(CGD, "resnet18", 4, False, 0)
    images, labels = batch()
    dataset = list(zip(images, labels))
    reference = embed_images(model, dataset, 3, 0, CPU)
    ours = embed_images(model, dataset, 3, 0, CPU, "bf16", channels_last=True)
    # float32 unit norms of 32 values: allclose's default 1e-5 relative is far above their rounding (~1e-7).
    assert ours.dtype == torch.float32 and torch.allclose(ours.norm(dim=1), torch.ones(8))
    # bf16's 8 mantissa bits (0.4 % per rounding) through resnet18: a cosine above 0.99, where an embedding of the
    # wrong image or layout is near 0.
    assert (ours * reference).sum(dim=1).min() > 0.99  # cosine of each image's two embeddings


def test_loader_options_pin_on_cuda_and_keep_a_few_batches_ahead():
    assert loader_options(0, CPU) == {"num_workers": 0, "pin_memory": False}
    assert loader_options(1, CUDA) == {"num_workers": 1, "pin_memory": True, "persistent_workers": True,
                                       "prefetch_factor": 4}
    assert loader_options(8, CUDA)["prefetch_factor"] == 2
