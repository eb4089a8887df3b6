"""UnifiedProxy through the method contract: params checks, losses, AdamP groups, transforms, the frozen-backbone
epochs (nothing of the backbone moves, the embedding and proxies do), and a byte-identical resume inside them."""

import dataclasses
from pathlib import Path

import pytest
import torch
from PIL import Image

from dmlbench.errors import DmlbenchError
from dmlbench.identity import Experiment, make_run
from dmlbench.methods import METHODS
from dmlbench.methods.unifiedproxy import ADAMP, AdamPAnyLayout, UnifiedProxyConfig
from dmlbench.models.backbones import IMAGENET
from dmlbench.params.load import build
from dmlbench.params.sections import TrainConfig
from dmlbench.training import loop
from dmlbench.training.loop import TrainJob

METHOD = METHODS["unifiedproxy"]
# The tiny recipe: 3 training classes x 4 images at 40 px (the `prepared` fixture), batches of 4 -> 3 per epoch.
CFG = UnifiedProxyConfig(loss="balanced_proxy", feature_dim=8, alpha=32.0, delta=0.1, freeze_bn=True,
                         batch_size=4, lr=0.01, proxy_lr=1.0, epochs=3, frozen_epochs=2, lr_step=1, lr_gamma=0.5,
                         train_crop=32, test_resize=36, test_crop=32)
EXP = Experiment("unifiedproxy", "resnet18", "synthetic", "uncropped", 0)
TCFG = TrainConfig(device="cpu", workers=0, pretrained=False, deterministic=False, checkpoint_every_steps=1)
LOGS = "live/plots/metrics/train"


def train(prepared: Path, out: Path, cfg=CFG) -> list[dict]:
    return loop.train(TrainJob(make_run(EXP, METHOD.describe(cfg), cfg, {}), METHOD, cfg, TCFG, prepared,
                               out / "model.pt", out / "live", out / "checkpoint.pt"))


def logged(out: Path, name: str) -> list[float]:
    return [float(row.split("\t")[1]) for row in (out / LOGS / f"{name}.tsv").read_text().splitlines()[1:]]


def saved_state(path: Path) -> dict:
    return torch.load(path, weights_only=True)["state_dict"]


def initial_state(cfg=CFG) -> dict:
    torch.manual_seed(0)  # train() seeds the same way before building the model
    return METHOD.build_model(cfg, "resnet18", 3, False, 0).state_dict()


@pytest.mark.parametrize(("key", "value", "message"), [
    ("feature_dim", 0, "unifiedproxy.feature_dim must be >= 1, got 0"),
    ("alpha", 0.0, "unifiedproxy.alpha must be > 0, got 0.0"),
    ("delta", 1.5, r"unifiedproxy.delta must be in \[0, 1\) \(a margin on cosines\), got 1.5"),
    ("batch_size", 1, r"unifiedproxy.batch_size must be >= 2 \(one image cannot train BatchNorm\), got 1"),
    ("lr", -1.0, "unifiedproxy.lr must be > 0, got -1.0"),
    ("proxy_lr", 0.0, "unifiedproxy.proxy_lr must be > 0, got 0.0"),
    ("epochs", -1, "unifiedproxy.epochs must be >= 0, got -1"),
    ("frozen_epochs", 4, r"unifiedproxy.frozen_epochs must be in \[0, epochs = 3\], got 4"),
    ("lr_step", 0, r"unifiedproxy.lr_step must be >= 1 \(epochs\), got 0"),
    ("lr_gamma", 1.5, r"unifiedproxy.lr_gamma must be in \(0, 1\], got 1.5"),
    ("train_crop", 8, "unifiedproxy.train_crop must be >= 16 px, got 8"),
    ("test_crop", 40, r"unifiedproxy.test_crop must be in \[16, test_resize = 36\] px, got 40"),
])
def test_every_size_and_rate_is_checked_with_one_line(key, value, message):
    with pytest.raises(DmlbenchError, match=f"^params.yaml: {message}$"):
        dataclasses.replace(CFG, **{key: value})


def test_an_unknown_loss_lists_the_choices():
    values = {**dataclasses.asdict(CFG), "loss": "proxy_nca"}
    with pytest.raises(DmlbenchError, match="unifiedproxy.loss = 'proxy_nca' is not allowed "
                                            r"\(choices: balanced_proxy, proxy_anchor\)"):
        build(UnifiedProxyConfig, values, "unifiedproxy")


def test_the_loss_terms_and_the_variant_label_follow_the_chosen_loss():
    cosines, labels = torch.rand(6, 3) * 2 - 1, torch.tensor([0, 0, 1, 1, 2, 2])
    balanced = METHOD.loss(CFG, (None, cosines), labels)
    anchor = METHOD.loss(dataclasses.replace(CFG, loss="proxy_anchor"), (None, cosines), labels)
    assert set(balanced) == {"loss", "sample_anchored", "proxy_anchor"} and set(anchor) == {"loss", "proxy_anchor"}
    assert torch.equal(anchor["loss"], balanced["proxy_anchor"])
    assert METHOD.describe(CFG) == "balanced_proxy.dmlbench"  # the balanced formula is ours, not the seed's
    assert METHOD.describe(dataclasses.replace(CFG, loss="proxy_anchor")) == "proxy_anchor"


def test_adamp_groups_the_proxies_at_their_own_rate_and_freezes_all_but_the_head():
    model = METHOD.build_model(CFG, "resnet18", 3, False, 0)
    optimization = METHOD.build_optimizer(CFG, model)
    rest, proxies = optimization.optimizer.param_groups
    assert isinstance(optimization.optimizer, AdamPAnyLayout) and rest["lr"] == 0.01 and proxies["lr"] == 1.0
    assert proxies["name"] == "proxies" and proxies["params"] == [model.proxies]
    assert len(rest["params"]) == len(list(model.parameters())) - 1
    assert all(rest[k] == v for k, v in ADAMP.items()) and rest["betas"] == (0.9, 0.999)
    assert optimization.frozen_epochs == 2 and optimization.warmup_epochs == 0
    assert [id(p) for p in optimization.trainable_for(1)] == [id(model.embedding.weight), id(model.proxies)]
    assert optimization.trainable_for(2) is None


def test_adamp_steps_channels_last_weights_as_it_steps_contiguous_ones():
    # AdamP's projection views weights with .view, which fails on channels_last (train.channels_last).
    gen = torch.Generator().manual_seed(0)
    weight, grad = torch.randn(8, 4, 3, 3, generator=gen), torch.randn(8, 4, 3, 3, generator=gen)
    for projected in (False, True):  # a gradient orthogonal to the weight takes AdamP's projection branch
        g = grad - (grad * weight).sum() / (weight * weight).sum() * weight if projected else grad
        plain = torch.nn.Parameter(weight.clone())
        nhwc = torch.nn.Parameter(weight.clone().to(memory_format=torch.channels_last))
        for p in (plain, nhwc):
            p.grad = g.clone().to(memory_format=torch.channels_last) if p is nhwc else g.clone()
            AdamPAnyLayout([p], lr=0.1, **ADAMP).step()
        assert torch.equal(plain.detach(), nhwc.detach().contiguous())


def test_transforms_crop_at_random_in_training_and_keep_the_aspect_ratio_in_testing():
    image = Image.new("RGB", (96, 48), (200, 100, 50))
    assert METHOD.train_transform(CFG, IMAGENET)(image).shape == (3, 32, 32)
    test = METHOD.test_transform(CFG, IMAGENET)
    assert test.transforms[0].size == 36 and test(image).shape == (3, 32, 32)  # shorter side 36, then the crop
    assert METHOD.image_sizes(CFG) == {"train": 32, "test": 32, "resize": 36}


def test_frozen_epochs_move_the_embedding_and_proxies_but_nothing_of_the_backbone(prepared, tmp_path):
    before = initial_state()
    train(prepared, tmp_path, dataclasses.replace(CFG, epochs=2))  # the whole run is the 2 frozen epochs
    after = saved_state(tmp_path / "model.pt")
    trunk = [k for k in before if k.startswith("trunk.")]
    assert all(torch.equal(before[k], after[k]) for k in trunk)  # weights and (frozen) BatchNorm statistics
    assert not torch.equal(before["embedding.weight"], after["embedding.weight"])
    assert not torch.equal(before["proxies"], after["proxies"])


def test_after_the_frozen_epochs_the_backbone_trains_and_the_proxies_keep_100x_the_rate(prepared, tmp_path):
    history = train(prepared, tmp_path)
    before, after = initial_state(), saved_state(tmp_path / "model.pt")
    assert not torch.equal(before["trunk.0.weight"], after["trunk.0.weight"])
    assert torch.equal(before["trunk.1.running_mean"], after["trunk.1.running_mean"])  # freeze_bn: true
    # lr x gamma^k in float64, logged as text: approx's 1e-6 relative is far above its rounding
    assert logged(tmp_path, "lr") == pytest.approx([0.01, 0.005, 0.0025])  # StepLR(1, 0.5) through every epoch
    assert logged(tmp_path, "lr_proxies") == pytest.approx([1.0, 0.5, 0.25])
    terms = [logged(tmp_path, name) for name in ("loss", "sample_anchored", "proxy_anchor")]
    # each batch's float32 total 0.5 s + 0.5 a rounds once (6e-8 relative), the epoch sums are float64: approx's
    # 1e-6 relative is far above that
    assert terms[0] == pytest.approx([0.5 * s + 0.5 * a for s, a in zip(terms[1], terms[2])])
    assert all(0 <= h["accuracy"] <= 1 for h in history)  # nearest-proxy accuracy of the batch


@pytest.mark.slow  # two trainings (~7 s); the contract's resume test over METHODS stays fast
def test_resumed_in_the_middle_of_the_frozen_epochs_equals_an_uninterrupted_run(prepared, tmp_path, monkeypatch):
    train(prepared, tmp_path / "straight")
    calls = {"n": 0}

    def stop_at_fifth_step(stop, where):
        calls["n"] += 1
        return calls["n"] == 5  # epoch 2 of 3, the second frozen one, after its second batch

    monkeypatch.setattr(loop, "_stop_everywhere", stop_at_fifth_step)
    with pytest.raises(DmlbenchError, match="stopped by SIGTERM at epoch 2, step 2"):
        train(prepared, tmp_path / "resumed")
    monkeypatch.undo()
    train(prepared, tmp_path / "resumed")  # finishes the frozen epoch, then trains the backbone
    for name in ("model.pt", f"{LOGS}/loss.tsv", f"{LOGS}/sample_anchored.tsv", f"{LOGS}/proxy_anchor.tsv",
                 f"{LOGS}/lr_proxies.tsv", f"{LOGS}/accuracy.tsv"):
        assert (tmp_path / "straight" / name).read_bytes() == (tmp_path / "resumed" / name).read_bytes(), name


def test_an_epoch_ending_in_one_image_trains_it_within_the_previous_batch(prepared, tmp_path):
    # 12 images in batches of 11 leave one: the seed's loader would step on it alone, which BatchNorm cannot train
    # on at 32 px (ResNet-18's last map is 1 x 1); it joins the first batch, and all 12 train in one step.
    cfg = dataclasses.replace(CFG, freeze_bn=False, batch_size=11, epochs=1, frozen_epochs=0)
    history = train(prepared, tmp_path, cfg)
    assert history[0]["images"] == 12 and METHOD.batch_sampler(cfg, [0] * 12, 0).sizes == [12]


@pytest.mark.parametrize("backbone", ["googlenet", "bn_inception"])
def test_one_training_step_reaches_a_non_resnet_trunk(backbone):
    model = METHOD.build_model(CFG, backbone, 5, False, 0).train()
    embedding, cosines = model(torch.randn(2, 3, 64, 64))
    assert embedding.shape == (2, 8) and cosines.shape == (2, 5)
    METHOD.loss(CFG, (embedding, cosines), torch.tensor([0, 3]))["loss"].backward()
    first = next(p for p in model.trunk.parameters() if p.dim() == 4)
    assert first.grad is not None and first.grad.abs().sum() > 0
