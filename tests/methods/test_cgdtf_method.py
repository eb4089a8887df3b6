"""CGD-TF through the method contract: params checks, the loss and model choices with the auxiliary classifier's
term (against Keras's formula), Adam at a constant rate or on the seed's plateau rule, the pad-to-square transforms
with the seed's augmentation, the seed's epoch length of P x K batches, and one short training run through the loop."""

import dataclasses
import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from dmlbench.data.cgdtf_augment import SeedAugmentation
from dmlbench.data.pad_square import PadToSquare
from dmlbench.errors import DmlbenchError
from dmlbench.identity import Experiment, make_run
from dmlbench.losses.hap2s import hap2s_loss
from dmlbench.losses.soft_batch_hard import soft_batch_hard_triplet
from dmlbench.methods import METHODS
from dmlbench.methods.cgdtf import CGDTFConfig, seed_epoch_length
from dmlbench.models.backbones import IMAGENET
from dmlbench.models.cgdtf import CGDTF, ReferenceHead
from dmlbench.params.load import build
from dmlbench.params.sections import TrainConfig
from dmlbench.training import loop
from dmlbench.training.loop import TrainJob

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


def keras_smoothed_cross_entropy(logits: list[list[float]], labels: list[int], temperature: float = 0.5,
                                 smoothing: float = 0.1) -> float:
    """The seed's classification loss, written from its code: Keras's categorical_crossentropy(one_hot(labels),
    logits / temperature, from_logits=True, label_smoothing=0.1), whose targets are one_hot x (1 - s) + s / C;
    mean over the batch. Python floats (float64), one sample and one class at a time."""
    losses = []
    for row, label in zip(logits, labels):
        scaled = [z / temperature for z in row]
        log_total = math.log(sum(math.exp(z) for z in scaled))
        targets = [(1 - smoothing) * (c == label) + smoothing / len(row) for c in range(len(row))]
        losses.append(-sum(t * (z - log_total) for t, z in zip(targets, scaled)))
    return sum(losses) / len(losses)


def test_the_model_the_loss_and_the_variant_label_follow_the_params():
    reference = dataclasses.replace(CFG, model="reference", loss="batch_hard")
    assert isinstance(METHOD.build_model(CFG, "resnet18", 3, False, 0), CGDTF)
    assert isinstance(METHOD.build_model(reference, "resnet18", 3, False, 0), ReferenceHead)
    assert METHOD.describe(CFG) == "S.hap2s" and METHOD.describe(reference) == "reference.batch_hard"
    embeddings, logits, labels = torch.randn(6, 4), torch.randn(6, 3), torch.tensor([0, 0, 1, 1, 2, 2])
    hap2s = METHOD.loss(CFG, (embeddings, logits), labels)
    hard = METHOD.loss(reference, (embeddings, logits), labels)
    assert set(hap2s) == {"loss", "hap2s", "classification"} and set(hard) == {"loss", "batch_hard", "classification"}
    assert torch.equal(hap2s["hap2s"], hap2s_loss(embeddings, labels))
    assert torch.equal(hard["batch_hard"], soft_batch_hard_triplet(embeddings, labels))
    for terms, metric in ((hap2s, "hap2s"), (hard, "batch_hard")):  # the seed's two Keras losses, 1:1
        assert torch.equal(terms["loss"], terms[metric] + terms["classification"])
    assert METHOD.correct(CFG, (embeddings, logits), labels) == (logits.argmax(dim=1) == labels).sum()


def test_the_classification_term_by_hand():
    # Two classes, logits (0.5 ln 3, 0): at temperature 0.5 the scaled logits are (ln 3, 0), p = (3/4, 1/4); the
    # smoothed target of label 0 over C = 2 is (0.9 + 0.05, 0.05): -(0.95 ln 0.75 + 0.05 ln 0.25) = 0.342613.
    logits = torch.tensor([[0.5 * math.log(3.0), 0.0]], dtype=torch.float64)
    by_hand = -(0.95 * math.log(0.75) + 0.05 * math.log(0.25))
    assert by_hand == pytest.approx(0.342613, abs=1e-6)  # the 6 printed decimals above (rounding 5e-7)
    value = METHOD.loss(CFG, (torch.randn(1, 4), logits), torch.tensor([0]))["classification"].item()
    assert value == pytest.approx(by_hand, rel=1e-12)  # float64 rounding only


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_the_classification_term_against_the_seeds_keras_formula(dtype):
    torch.manual_seed(0)
    logits, labels = 3 * torch.randn(12, 7, dtype=torch.float64), torch.randint(0, 7, (12,))
    expected = keras_smoothed_cross_entropy(logits.tolist(), labels.tolist())
    value = METHOD.loss(CFG, (torch.randn(12, 4), logits.to(dtype)), labels)["classification"].item()
    # float64: rounding only; float32: log-softmax of logits up to ~20 in float32 (~1e-6 relative)
    assert value == pytest.approx(expected, rel=1e-12 if dtype == torch.float64 else 1e-5)


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


def test_the_plateau_rule_cuts_the_rate_on_the_patience_th_epoch_without_a_better_score():
    cfg = dataclasses.replace(CFG, plateau_patience=6, stop_patience=15)
    optimization = METHOD.build_optimizer(cfg, METHOD.build_model(cfg, "resnet18", 3, False, 0))
    (group,) = optimization.optimizer.param_groups
    rates = []
    for epoch, score in enumerate([0.5, 0.6] + [0.6] * 7):  # a better score, then 7 epochs that are not better
        optimization.optimizer.step()
        optimization.end_epoch(epoch, score)
        rates.append(group["lr"])
    # Keras's ReduceLROnPlateau(patience=6): the 6th epoch in a row without a better score (epoch index 7) cuts.
    # 0.01 x 0.1 in float64 is 0.0010000000000000002: approx's 1e-6 relative is far above that rounding
    assert rates == [0.01] * 7 + [pytest.approx(0.001)] * 2
    assert optimization.stop_patience == 15 and optimization.needs_scores


def test_transforms_pad_to_a_square_then_resize():
    image = Image.new("RGB", (60, 30), (200, 100, 50))
    test = METHOD.test_transform(CFG, IMAGENET)
    assert isinstance(test.transforms[0], PadToSquare) and test.transforms[1].size == (32, 32)
    tensor = test(image)
    assert tensor.shape == (3, 32, 32)
    black = (torch.zeros(3) - torch.tensor(IMAGENET.mean)) / torch.tensor(IMAGENET.std)
    # float32 (x / 255 - mean) / std of values <= 2.7 rounds a few times (6e-8 relative each): 1e-5. One colour
    # level would move a value by 1 / 255 / 0.229 = 0.017.
    assert torch.allclose(tensor[:, 0, 16], black, rtol=0, atol=1e-5)  # the top rows are the zero padding
    # Row 16 of 32 reads source rows ~28-32 of the 60 x 60 square, inside the image's rows 15-44: the resize's
    # weights sum to 1 over one colour, so the pixel keeps its level exactly and only the normalisation rounds.
    assert torch.allclose(tensor[:, 16, 16], (torch.tensor([200, 100, 50]) / 255 - torch.tensor(IMAGENET.mean))
                          / torch.tensor(IMAGENET.std), rtol=0, atol=1e-5)
    train = METHOD.train_transform(CFG, IMAGENET)
    assert isinstance(train.transforms[2], SeedAugmentation) and train(image).shape == (3, 32, 32)
    assert METHOD.image_sizes(CFG) == {"train": 32, "test": 32, "resize": 32}


def test_batches_are_p_classes_of_k_images_for_the_seeds_epoch():
    labels = [c for c in range(7) for _ in range(9 if c == 0 else 4)]  # 33 images, the largest class 9
    sampler = METHOD.batch_sampler(dataclasses.replace(CFG, images_per_class=4), labels, 0)
    batches = list(sampler)
    # The seed's epoch: (7 classes // 3) x (9 // 4) = 2 x 2 = 4 batches (33 images // 12 would give 2).
    assert len(sampler) == len(batches) == 4 and all(len(b) == 12 for b in batches)
    assert all(len({labels[i] for i in b}) == 3 for b in batches)  # 3 classes x 4 images each


def test_the_seeds_cars196_epoch_is_8_x_the_largest_class_over_8():
    sizes = [68] + [40 + c % 25 for c in range(97)]  # 98 training classes, the largest 68 images
    labels = [c for c, n in enumerate(sizes) for _ in range(n)]
    assert seed_epoch_length(labels, 12, 8) == 8 * (68 // 8) == 64  # 98 // 12 = 8
    seed = dataclasses.replace(CFG, classes_per_batch=12, images_per_class=8)
    assert len(METHOD.batch_sampler(seed, labels, 0)) == 64


def test_an_epoch_of_no_batch_is_refused_in_one_line():
    labels = [c for c in range(4) for _ in range(3)]  # every class smaller than K = 4
    with pytest.raises(DmlbenchError, match=r"largest training class has 3 images, fewer than images_per_class = "
                                            r"4: lower cgdtf.images_per_class$"):
        METHOD.batch_sampler(dataclasses.replace(CFG, classes_per_batch=2, images_per_class=4), labels, 0)


@pytest.mark.parametrize("model", ["cgd", "reference"])
def test_a_short_run_trains_and_logs_the_chosen_loss(prepared, tmp_path, model):
    cfg = dataclasses.replace(CFG, model=model, loss="batch_hard" if model == "reference" else "hap2s")
    torch.manual_seed(0)  # train() seeds the same way before building the model
    before = METHOD.build_model(cfg, "resnet18", 3, False, 0).state_dict()
    loop.train(TrainJob(make_run(EXP, METHOD.describe(cfg), cfg, {}), METHOD, cfg, TCFG, prepared,
                        tmp_path / "model.pt", tmp_path / "live", tmp_path / "checkpoint.pt"))
    after = torch.load(tmp_path / "model.pt", weights_only=True)["state_dict"]
    assert not torch.equal(before["trunk.0.weight"], after["trunk.0.weight"])
    losses, classification = logged(tmp_path, cfg.loss), logged(tmp_path, "classification")
    assert len(losses) == len(classification) == 2 and all(torch.isfinite(torch.tensor(losses + classification)))
    # the epoch means of the two terms add up to the logged total: each batch's float32 total rounds once (6e-8
    # relative), the epoch sums are float64: 1e-6 is far above that
    assert logged(tmp_path, "loss") == pytest.approx([m + c for m, c in zip(losses, classification)], rel=1e-6)
    assert logged(tmp_path, "lr") == [0.01, 0.01] and len(logged(tmp_path, "accuracy")) == 2
