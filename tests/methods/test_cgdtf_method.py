"""CGD-TF through the method contract: params checks, the loss and model choices, Adam at a constant rate, the
pad-to-square transforms, P x K batches, and one short training run through the loop."""

import dataclasses
from pathlib import Path

import pytest
import torch
from PIL import Image

from dmlbench.config import build
from dmlbench.data.pad_square import PadToSquare
from dmlbench.errors import DmlbenchError
from dmlbench.identity import Experiment, make_run
from dmlbench.losses.hap2s import hap2s_loss
from dmlbench.losses.soft_batch_hard import soft_batch_hard_triplet
from dmlbench.methods import METHODS
from dmlbench.methods.cgdtf import CGDTFConfig
from dmlbench.models.backbones import IMAGENET
from dmlbench.models.cgdtf import CGDTF, ReferenceHead
from dmlbench.sections import TrainConfig
from dmlbench.training import loop

METHOD = METHODS["cgdtf"]
# The tiny recipe: 3 training classes x 4 images at 40 px (the `prepared` fixture), 3 x 2 batches -> 2 per epoch.
CFG = CGDTFConfig(model="cgd", loss="hap2s", gd_config="S", feature_dim=8, classes_per_batch=3, images_per_class=2,
                  lr=0.01, epochs=2, image_size=32)
EXP = Experiment("cgdtf", "resnet18", "synthetic", "uncropped", 0)
TCFG = TrainConfig(device="cpu", workers=0, pretrained=False, deterministic=False, checkpoint_every_steps=0)
LOGS = "live/plots/metrics/train"


def logged(out: Path, name: str) -> list[float]:
    return [float(row.split("\t")[1]) for row in (out / LOGS / f"{name}.tsv").read_text().splitlines()[1:]]


@pytest.mark.parametrize(("key", "value", "message"), [
    ("feature_dim", 0, "cgdtf.feature_dim must be >= 1, got 0"),
    ("classes_per_batch", 1, r"cgdtf.classes_per_batch \(1\) and cgdtf.images_per_class \(2\) must be >= 2: "
                             "both losses need positives and negatives"),
    ("images_per_class", 1, r"cgdtf.classes_per_batch \(3\) and cgdtf.images_per_class \(1\) must be >= 2"),
    ("lr", 0.0, "cgdtf.lr must be > 0, got 0.0"),
    ("epochs", -1, "cgdtf.epochs must be >= 0, got -1"),
    ("image_size", 8, "cgdtf.image_size must be >= 16 px, got 8"),
])
def test_every_size_and_rate_is_checked_with_one_line(key, value, message):
    with pytest.raises(DmlbenchError, match=f"^params.yaml: {message}"):
        dataclasses.replace(CFG, **{key: value})


@pytest.mark.parametrize(("key", "value", "choices"), [("model", "resnet", "cgd, reference"),
                                                        ("loss", "triplet", "hap2s, batch_hard")])
def test_an_unknown_model_or_loss_lists_the_choices(key, value, choices):
    values = {**dataclasses.asdict(CFG), key: value}
    with pytest.raises(DmlbenchError, match=rf"cgdtf.{key} = '{value}' is not allowed \(choices: {choices}\)"):
        build(CGDTFConfig, values, "cgdtf")


def test_descriptors_are_checked_for_the_cgd_model_only():
    with pytest.raises(DmlbenchError, match="unknown gd_config 'X'"):
        dataclasses.replace(CFG, gd_config="X")
    with pytest.raises(DmlbenchError, match="feature_dim 8 does not divide by the 3 descriptors"):
        dataclasses.replace(CFG, gd_config="SMG")
    assert dataclasses.replace(CFG, model="reference", gd_config="SMG").feature_dim == 8  # ignored there


def test_the_model_the_loss_and_the_variant_label_follow_the_params():
    reference = dataclasses.replace(CFG, model="reference", loss="batch_hard")
    assert isinstance(METHOD.build_model(CFG, "resnet18", 3, False, 0), CGDTF)
    assert isinstance(METHOD.build_model(reference, "resnet18", 3, False, 0), ReferenceHead)
    assert METHOD.describe(CFG) == "S.hap2s" and METHOD.describe(reference) == "reference.batch_hard"
    embeddings, labels = torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2])
    hap2s = METHOD.loss(CFG, (embeddings,), labels)
    hard = METHOD.loss(reference, (embeddings,), labels)
    assert set(hap2s) == {"loss", "hap2s"} and torch.equal(hap2s["loss"], hap2s_loss(embeddings, labels))
    assert set(hard) == {"loss", "batch_hard"}
    assert torch.equal(hard["loss"], soft_batch_hard_triplet(embeddings, labels))
    assert METHOD.correct is None  # no classifier: no accuracy curve


def test_adam_keeps_its_rate_through_the_epochs():
    model = METHOD.build_model(CFG, "resnet18", 3, False, 0)
    optimization = METHOD.build_optimizer(CFG, model)
    (group,) = optimization.optimizer.param_groups
    assert isinstance(optimization.optimizer, torch.optim.Adam) and group["weight_decay"] == 0
    assert group["betas"] == (0.9, 0.999) and group["eps"] == 1e-7  # Keras's Adam defaults
    for epoch in range(5):
        optimization.optimizer.step()  # no gradients: moves nothing, but keeps the scheduler's order check quiet
        optimization.end_epoch(epoch)
    assert group["lr"] == 0.01 and optimization.warmup_epochs == optimization.frozen_epochs == 0


def test_transforms_pad_to_a_square_then_resize():
    image = Image.new("RGB", (60, 30), (200, 100, 50))
    test = METHOD.test_transform(CFG, IMAGENET)
    assert isinstance(test.transforms[0], PadToSquare) and test.transforms[1].size == (32, 32)
    tensor = test(image)
    assert tensor.shape == (3, 32, 32)
    black = (torch.zeros(3) - torch.tensor(IMAGENET.mean)) / torch.tensor(IMAGENET.std)
    assert torch.allclose(tensor[:, 0, 16], black, atol=1e-5)  # the top rows are the zero padding
    assert torch.allclose(tensor[:, 16, 16], (torch.tensor([200, 100, 50]) / 255 - torch.tensor(IMAGENET.mean))
                          / torch.tensor(IMAGENET.std), atol=1e-2)
    assert METHOD.train_transform(CFG, IMAGENET)(image).shape == (3, 32, 32)
    assert METHOD.image_sizes(CFG) == {"train": 32, "test": 32, "resize": 32}


def test_batches_are_p_classes_of_k_images():
    labels = [c for c in range(5) for _ in range(4)]
    sampler = METHOD.batch_sampler(CFG, labels, 0)
    batches = list(sampler)
    assert len(batches) == 20 // 6 and all(len(b) == 6 for b in batches)
    assert all(len({labels[i] for i in b}) == 3 for b in batches)  # 3 classes x 2 images each


@pytest.mark.parametrize("model", ["cgd", "reference"])
def test_a_short_run_trains_and_logs_the_chosen_loss(prepared, tmp_path, model):
    cfg = dataclasses.replace(CFG, model=model, loss="batch_hard" if model == "reference" else "hap2s")
    torch.manual_seed(0)  # train() seeds the same way before building the model
    before = METHOD.build_model(cfg, "resnet18", 3, False, 0).state_dict()
    loop.train(make_run(EXP, METHOD.describe(cfg), cfg, {}), METHOD, cfg, TCFG, prepared, tmp_path / "model.pt",
               tmp_path / "live", tmp_path / "checkpoint.pt")
    after = torch.load(tmp_path / "model.pt", weights_only=True)["state_dict"]
    assert not torch.equal(before["trunk.0.weight"], after["trunk.0.weight"])
    losses = logged(tmp_path, cfg.loss)
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    assert logged(tmp_path, "loss") == losses and logged(tmp_path, "lr") == [0.01, 0.01]
