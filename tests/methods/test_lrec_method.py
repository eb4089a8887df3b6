"""LREC through the method contract: params checks, loss and accuracy, Adam + MultiStepLR, transforms and the
dataset normalisation hook, and a short training run whose model file (and model.json) rebuilds the model."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from dmlbench.errors import DmlbenchError
from dmlbench.identity import Experiment, make_run
from dmlbench.methods import METHODS
from dmlbench.methods.lrec import DatasetNormalization, LRECConfig
from dmlbench.models.backbones import IMAGENET
from dmlbench.models.meta_classes import assign_meta_classes
from dmlbench.params.load import build
from dmlbench.params.sections import TrainConfig
from dmlbench.training import loop
from dmlbench.training.loop import TrainJob
from dmlbench.training.model_file import READABLE_FILE, load_model_alone

METHOD = METHODS["lrec"]
# The tiny recipe: 3 training classes x 4 images at 40 px (the `prepared` fixture), 2 learners x 2 meta classes.
CFG = LRECConfig(ensemble_size=2, meta_classes=2, batch_size=4, lr=0.01, epochs=2, lr_milestones=(0.5, 0.7),
                 lr_gamma=0.1, resize="shorter", train_resize=36, train_crop=32, test_resize=36, test_crop=32,
                 normalization="backbone")
EXP = Experiment("lrec", "resnet18", "synthetic", "uncropped", 0)
TCFG = TrainConfig(device="cpu", workers=0, pretrained=False, deterministic=False, checkpoint_every_steps=0)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("ensemble_size", 0, "lrec.ensemble_size must be >= 1, got 0"),
    ("meta_classes", 1, "lrec.meta_classes must be >= 2, got 1"),
    ("batch_size", 1, r"lrec.batch_size must be >= 2 \(one image cannot train BatchNorm\), got 1"),
    ("lr", 0.0, "lrec.lr must be > 0, got 0.0"),
    ("epochs", -1, "lrec.epochs must be >= 0, got -1"),
    ("lr_milestones", [0.5, 1.5], r"lrec.lr_milestones must be fractions in \(0, 1\], got \[0.5, 1.5\]"),
    ("lr_gamma", 0.0, r"lrec.lr_gamma must be in \(0, 1\], got 0.0"),
    ("train_crop", 40, r"lrec.train_crop must be in \[16, train_resize = 36\] px, got 40"),
    ("test_crop", 8, r"lrec.test_crop must be in \[16, test_resize = 36\] px, got 8"),
    ("mean", [0.5, 0.5, 0.5], "lrec.mean and lrec.std must both be set or both null"),
    ("resize", "both", r"lrec.resize = .both. is not allowed \(choices: shorter, square\)"),
    ("normalization", "imagenet", r"lrec.normalization = .imagenet. is not allowed \(choices: backbone, dataset\)"),
])
def test_bad_params_are_refused_with_one_line(key, value, message):
    values = {**dataclasses.asdict(CFG), key: value}
    with pytest.raises(DmlbenchError, match=message):
        build(LRECConfig, values, "lrec")


def test_std_must_be_positive():
    with pytest.raises(DmlbenchError, match=r"lrec.std must be > 0 per channel, got \[0.2, 0.0, 0.2\]"):
        build(LRECConfig, {**dataclasses.asdict(CFG), "mean": [0.5] * 3, "std": [0.2, 0.0, 0.2]}, "lrec")


def test_loss_and_accuracy_use_each_learners_meta_labels():
    # float64: the loss and F.cross_entropy are two routes to the same value, equal to rounding (1e-16) in float64
    model = METHOD.build_model(CFG, "resnet18", 3, False, 0).eval().double()
    outputs = model(torch.randn(4, 3, 32, 32, dtype=torch.float64))
    labels = torch.tensor([0, 1, 2, 1])
    meta = torch.as_tensor(assign_meta_classes(3, 2, 2, 0))
    assert torch.equal(outputs[2], meta)
    targets = meta[:, labels].T  # (4 images, 2 learners)
    expected = torch.nn.functional.cross_entropy(outputs[1].reshape(8, 2), targets.reshape(8))
    # float64 log-sum-exps of 2 logits and a mean of 8 terms by two routes: roundings of 1e-16, far below 1e-12
    assert METHOD.loss(CFG, outputs, labels)["loss"].item() == pytest.approx(expected.item(), rel=0, abs=1e-12)
    hits = (outputs[1].argmax(dim=2) == targets).sum().item()
    assert METHOD.correct(CFG, outputs, labels).item() == hits / 2  # a count halved: exact


def test_adam_and_the_seeds_milestones():
    cfg = dataclasses.replace(CFG, epochs=20)
    optimization = METHOD.build_optimizer(cfg, METHOD.build_model(cfg, "resnet18", 3, False, 0))
    assert isinstance(optimization.optimizer, torch.optim.Adam)
    assert sorted(optimization.scheduler.milestones) == [10, 14]  # int(0.5 x 20), int(0.7 x 20)


@pytest.mark.parametrize(("resize", "train_size", "test_size"), [("shorter", (32, 32), (32, 32)),
                                                                 ("square", (32, 32), (32, 32))])
def test_transforms_give_the_crops(resize, train_size, test_size):
    cfg = dataclasses.replace(CFG, resize=resize)
    image = Image.new("RGB", (60, 40), (255, 0, 0))
    assert METHOD.train_transform(cfg, IMAGENET)(image).shape[1:] == train_size
    assert METHOD.test_transform(cfg, IMAGENET)(image).shape[1:] == test_size


def test_shorter_side_keeps_the_aspect_ratio_and_square_does_not():
    # A 60 x 40 image whose left third is white: Resize(36) of the shorter side keeps it a third of the width
    # (54 x 36), Resize((36, 36)) too, but CenterCrop(32) then shows different shares of it.
    image = Image.new("RGB", (60, 40), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 20, 40))
    shorter = METHOD.test_transform(dataclasses.replace(CFG, resize="shorter"), IMAGENET)(image)
    square = METHOD.test_transform(dataclasses.replace(CFG, resize="square"), IMAGENET)(image)
    # Brighter than mid-grey (antialiasing blends the edge pixel):
    assert (shorter[0, 16] > 0).sum().item() == 7  # 54-px row: white 0..17, the crop starts at 11
    assert (square[0, 16] > 0).sum().item() == 10  # 36-px row: white 0..11, the crop starts at 2


def test_dataset_normalisation_from_the_config_or_prepare(tmp_path):
    dataset = dataclasses.replace(CFG, normalization="dataset")
    assert METHOD.normalization(CFG, IMAGENET, tmp_path) is IMAGENET
    with pytest.raises(DmlbenchError, match="image_stats.json .* rerun dvc repro prepare"):
        METHOD.normalization(dataset, IMAGENET, tmp_path)
    (tmp_path / "image_stats.json").write_text(json.dumps({"mean": [0.1, 0.2, 0.3], "std": [0.4, 0.5, 0.6]}))
    norm = METHOD.normalization(dataset, IMAGENET, tmp_path)
    assert isinstance(norm, DatasetNormalization) and norm.mean == (0.1, 0.2, 0.3) and norm.std == (0.4, 0.5, 0.6)
    cars = dataclasses.replace(dataset, mean=(0.4853, 0.4965, 0.4295), std=(0.2237, 0.2193, 0.2568))
    assert METHOD.normalization(cars, IMAGENET, tmp_path).mean == (0.4853, 0.4965, 0.4295)
    image = Image.new("RGB", (40, 40), (51, 102, 153))  # 0.2, 0.4, 0.6
    pixel = METHOD.test_transform(dataset, norm)(image)[:, 0, 0]
    # float32: ToTensor's / 255 and (x - mean) / std round a few times (6e-8 relative each), far inside
    # assert_close's float32 default (1.3e-6 relative + 1e-5); a wrong statistic moves a value by >= 0.1.
    torch.testing.assert_close(pixel, torch.tensor([0.25, 0.4, 0.5]))


def test_dataset_normalisation_refuses_the_backbones():
    with pytest.raises(DmlbenchError, match="lrec.normalization: dataset, but this stage passed the backbone's"):
        METHOD.train_transform(dataclasses.replace(CFG, normalization="dataset"), IMAGENET)


def test_describe():
    assert METHOD.describe(dataclasses.replace(CFG, ensemble_size=48, meta_classes=12)) == "48x12"


# Slow: a whole LREC training (~5 s); tests/models/test_lrec_model.py and the contract tests cover LREC fast.
@pytest.mark.slow
def test_training_writes_a_model_file_that_rebuilds_the_ensemble(prepared: Path, tmp_path: Path):
    cfg = dataclasses.replace(CFG, batch_size=5)  # 12 images: batches of 5, 5 and the last partial 2 (the seed's)
    run = make_run(EXP, METHOD.describe(cfg), cfg, {})
    history = loop.train(TrainJob(run, METHOD, cfg, TCFG, prepared, tmp_path / "model.pt", tmp_path / "live",
                         tmp_path / "checkpoint.pt"))
    assert len(history) == 2 and all(torch.isfinite(torch.tensor(h["terms"]["loss"])) for h in history)
    assert [h["images"] for h in history] == [12, 12]  # every training image once per epoch
    model, saved = load_model_alone(tmp_path / "model.pt")
    assert torch.equal(model.meta_labels, torch.as_tensor(assign_meta_classes(3, 2, 2, 0)))
    readable = json.loads((tmp_path / READABLE_FILE).read_text())
    assert readable["classes"] == " ".join(map(str, saved["classes"]))
    assert readable["meta_labels_per_learner"] == [" ".join(map(str, r)) for r in model.meta_labels.tolist()]
    embedding = model.eval()(torch.randn(2, 3, 32, 32))[0]
    assert embedding.shape == (2, 4)
    # float32 unit norms of 4 values: a few roundings of 6e-8, inside assert_close's float32 default (1.3e-6)
    torch.testing.assert_close(embedding.norm(dim=1), torch.ones(2))
