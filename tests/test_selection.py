"""train.select: held-out classes, the weights of the best epoch, resume keeping the best so far, best_test."""

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from prepared_data import prepare_synthetic
from torch import nn

from dmlbench.data.sampler import ShuffledBatchSampler
from dmlbench.data.transforms import eval_preset, train_preset
from dmlbench.errors import DmlbenchError
from dmlbench.identity import Experiment, make_run
from dmlbench.methods.method import Method
from dmlbench.models.backbones import IMAGENET, build_trunk
from dmlbench.params.sections import TrainConfig
from dmlbench.training import loop
from dmlbench.training.loop import TrainJob
from dmlbench.methods.optimization import Optimization
from dmlbench.training.selection import HeldOut, Selector, held_out_classes, split_validation


@dataclass(frozen=True)
class Toy:
    lr: float = 0.05
    epochs: int = 3


class ToyNet(nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
        self.trunk = build_trunk("resnet18", False)
        self.head = nn.Linear(512, num_classes)

    def forward(self, x):
        features = self.trunk(x).mean(dim=(2, 3))
        return F.normalize(features, dim=1), self.head(features)


def toy_optimizer(cfg, model) -> Optimization:
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    return Optimization(optimizer, torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=1.0))


TOY = Method(name="toy", config_cls=Toy, build_model=lambda cfg, backbone, classes, pretrained, seed: ToyNet(classes),
             loss=lambda cfg, outputs, labels: {"loss": F.cross_entropy(outputs[1], labels)},
             build_optimizer=toy_optimizer,
             batch_sampler=lambda cfg, labels, seed: ShuffledBatchSampler(len(labels), 6, seed),
             train_transform=lambda cfg, norm: train_preset(36, 32, norm),
             test_transform=lambda cfg, norm: eval_preset(32, None, norm),
             image_sizes=lambda cfg: {"train": 32, "test": 32, "resize": 36}, describe=lambda cfg: "toy")


@pytest.fixture(scope="module")
def prepared12(tmp_path_factory) -> Path:
    """12 synthetic classes x 4 images at 40 px: 6 training classes, 6 test classes."""
    return prepare_synthetic(tmp_path_factory.mktemp("data12"), 12)


def tcfg(select: str, val_fraction: float = 0.34, **kw) -> TrainConfig:
    return TrainConfig(device="cpu", workers=0, pretrained=False, deterministic=False, checkpoint_every_steps=1,
                       select=select, val_fraction=val_fraction, **kw)


def train(prepared: Path, out: Path, select: str, epochs: int = 3, val_fraction: float = 0.34, **kw) -> dict:
    cfg = Toy(epochs=epochs)
    run = make_run(Experiment("toy", "resnet18", "synthetic", "uncropped", 0), "toy", cfg, {})
    loop.train(TrainJob(run, TOY, cfg, tcfg(select, val_fraction, **kw), prepared, out / "model.pt", out / "live",
               out / "checkpoint.pt"))
    return torch.load(out / "model.pt", weights_only=True)


def scripted(scores: list[float], maps: list[float] | None = None):
    """A Selector.score that returns scores[epoch] as Recall@1 (epoch 0 = before training) and maps[epoch] (default
    half of it) as MAP@R, so the best epoch is known."""
    def score(self, model):
        epoch = len(self.scores)
        return {"recall@1": scores[epoch], "map@r": maps[epoch] if maps else scores[epoch] / 2}
    return score


def test_held_out_classes_are_seeded_disjoint_and_counted():
    rows = [(f"{c}/{i}.jpg", c) for c in range(30) for i in range(10)]
    train_rows, val_rows, held = split_validation(rows, 0.2, seed=3)
    val_classes = {label for _, label in val_rows}
    assert len(val_classes) == 6 and not val_classes & {label for _, label in train_rows}
    assert held == HeldOut(tuple(sorted(val_classes)), 30, 0.2) and held.fraction == 0.2
    assert len(train_rows) + len(val_rows) == len(rows)
    assert split_validation(rows, 0.2, seed=3) == (train_rows, val_rows, held)  # same seed, same classes
    draws = {frozenset(label for _, label in split_validation(rows, 0.2, seed=s)[1]) for s in range(8)}
    assert len(draws) > 1  # the seed matters
    with pytest.raises(DmlbenchError) as err:
        split_validation(rows, 0.97, seed=0)
    assert str(err.value) == ("train.val_fraction 0.97 holds out 29 of the 30 training classes, leaving fewer than 2 "
                              "to train on: lower train.val_fraction (to at most 0.93 here) or use train.select: last")


def test_held_out_classes_are_those_numpy_draws_from_the_seed():
    """The draw written out: default_rng(seed).choice over the sorted classes, without replacement."""
    import numpy as np

    classes = list(range(24, 0, -2))  # 12 classes, unsorted
    expected = sorted(int(c) for c in np.random.default_rng(5).choice(sorted(classes), size=5, replace=False))
    assert held_out_classes(classes, 0.4, 5).classes == tuple(expected)


def test_the_line_and_the_facts_say_what_is_held_out():
    held = held_out_classes(list(range(20)), 0.25, seed=0)
    assert len(held.classes) == 5 and held.fraction == 0.25
    assert held.facts() == {"val_classes": list(held.classes), "val_fraction": 0.25, "val_fraction_asked": 0.25}
    shown = ", ".join(map(str, held.classes))
    assert held.summary() == ("train: best_val holds out 5 of the 20 training classes (25 %; train.val_fraction 0.25)"
                              f", never trained on: classes {shown}")
    many = held_out_classes(list(range(100)), 0.25, seed=0)
    assert many.summary().endswith(", ".join(map(str, many.classes[:20])) + " and 5 more (all in the model file)")


def test_too_few_held_out_classes_to_tell_epochs_apart_are_refused_in_one_line():
    """The issue's case: 5 training classes, val_fraction 0.4 holds out 2 (R@1 saturated at 0.96-0.99)."""
    with pytest.raises(DmlbenchError) as err:
        held_out_classes([1, 2, 3, 4, 5], 0.4, seed=0)
    assert str(err.value) == ("train.select best_val: train.val_fraction 0.4 holds out 2 of the 5 training classes, "
                              "too few to tell epochs apart (at least 5: with fewer a random embedding scores "
                              "1/classes and the score saturates): use a dataset with more training classes, or use "
                              "train.select: last")
    with pytest.raises(DmlbenchError, match="holds out 4 of the 20 .* raise train.val_fraction to at least 0.25,"):
        held_out_classes(list(range(20)), 0.2, seed=0)
    assert len(held_out_classes(list(range(20)), 0.25, seed=0).classes) == 5  # the fix it names is enough
    # 350 classes: 5/350 = 0.0143 would print as 0.01 (4 classes); the named fix rounds up to 0.02 (7 classes)
    with pytest.raises(DmlbenchError, match="at least 0.02,"):
        held_out_classes(list(range(350)), 0.01, seed=0)


def test_too_few_held_out_images_are_refused_in_one_line():
    rows = [(f"{c}/{i}.jpg", c) for c in range(20) for i in range(9)]  # 5 held-out classes x 9 images = 45 < 50
    with pytest.raises(DmlbenchError) as err:
        split_validation(rows, 0.25, seed=0)
    assert str(err.value) == ("train.select best_val: the 5 held-out classes hold 45 images, too few to tell epochs "
                              "apart (at least 50: one image moves Recall@1 by 1/45): raise train.val_fraction, or "
                              "use train.select: last")
    rows = [(f"{c}/{i}.jpg", c) for c in range(20) for i in range(10)]  # 50: accepted
    assert len(split_validation(rows, 0.25, seed=0)[1]) == 50


@pytest.fixture
def small_held_out(monkeypatch):
    """The toy set (6 training classes x 4 images) holds out 2 classes, 8 images: below the thresholds, which the
    tests above check; these tests check what selection does with a held-out set, kept small for speed."""
    from dmlbench.training import selection

    monkeypatch.setattr(selection, "MIN_VAL_CLASSES", 2)
    monkeypatch.setattr(selection, "MIN_VAL_IMAGES", 1)


def test_the_model_file_records_the_classes_held_out_and_the_printed_line(prepared12, tmp_path, capsys, small_held_out):
    """6 training classes, val_fraction 0.34 holds out round(2.04) = 2 (no training: epochs 0)."""
    saved = train(prepared12, tmp_path, "best_val", epochs=0, val_fraction=0.34)
    facts = saved["training"]
    rows = [(p, int(label)) for p, label in (line.split(",") for line in
                                             (prepared12 / "train.csv").read_text().splitlines()[1:])]
    held = split_validation(rows, 0.34, 0)[2]
    assert facts["val_classes"] == list(held.classes) and len(held.classes) == 2
    assert facts["val_fraction"] == round(2 / 6, 6) and facts["val_fraction_asked"] == 0.34
    assert sorted(saved["classes"] + facts["val_classes"]) == sorted({label for _, label in rows})
    assert held.summary() in capsys.readouterr().out.splitlines()


# Slow: three toy trainings (~7 s); the selection-metric and model-file tests keep best_val in the fast tier.
@pytest.mark.slow
def test_best_val_keeps_the_best_epochs_weights(prepared12, tmp_path, monkeypatch, small_held_out):
    monkeypatch.setattr(Selector, "score", scripted([0.1, 0.5, 0.9, 0.3]))
    best = train(prepared12, tmp_path / "three", "best_val", epochs=3)
    assert best["training"]["selected_epoch"] == 2
    assert best["training"]["selected_scores"] == {"recall@1": 0.9, "map@r": 0.45}
    assert [s["epoch"] for s in best["training"]["selection_scores"]] == [0, 1, 2, 3]
    stopped_at_best = train(prepared12, tmp_path / "two", "best_val", epochs=2)  # same training, two epochs
    for key, value in stopped_at_best["state_dict"].items():
        assert torch.equal(best["state_dict"][key], value), key
    assert len(best["classes"]) == 4  # 2 of the 6 training classes were held out


@pytest.mark.parametrize("metric, epoch", [("map@r", 1), ("recall@1", 2)])
def test_the_selection_metric_picks_the_epoch_and_the_other_breaks_ties(prepared12, tmp_path, monkeypatch, capsys,
                                                                        small_held_out, metric, epoch):
    """Recall@1 saturates (0.9 untrained, 0.95 at epochs 2 and 3) while MAP@R peaks at epoch 1; a Recall@1 tie goes
    to the better MAP@R (epoch 2), then to the earlier epoch."""
    monkeypatch.setattr(Selector, "score", scripted([0.9, 0.9, 0.95, 0.95], [0.1, 0.5, 0.3, 0.2]))
    facts = train(prepared12, tmp_path, "best_val", select_metric=metric)["training"]
    assert facts["selected_epoch"] == epoch and facts["select_metric"] == metric
    lines = capsys.readouterr().out.splitlines()
    # the untrained network's scores, printed as every later epoch's are
    assert "epoch 0/3 (untrained): val/recall@1 0.9000 val/map@r 0.1000" in lines
    assert any(line.startswith("epoch 1/3: loss ") and " val/recall@1 0.9000 val/map@r 0.5000 " in line
               for line in lines)


def test_an_unknown_selection_metric_is_refused_in_one_line():
    with pytest.raises(DmlbenchError,
                       match=r"^params.yaml: train.select_metric must be one of map@r, recall@1, got 'r@1'$"):
        tcfg("best_val", select_metric="r@1")


def test_best_val_scores_are_those_of_the_kept_model(prepared12, tmp_path, small_held_out):
    saved = train(prepared12, tmp_path, "best_val", epochs=2)
    facts = saved["training"]
    model = ToyNet(len(saved["classes"]))
    model.load_state_dict(saved["state_dict"])
    rows = [(p, label) for p, label in (line.split(",") for line in
                                        (prepared12 / "train.csv").read_text().splitlines()[1:])]
    _, val_rows, _ = split_validation([(p, int(label)) for p, label in rows], 0.34, 0)
    selector = Selector("best_val", {"test": val_rows}, prepared12, eval_preset(32, None, _norm()), 16,
                        torch.device("cpu"), "fp32", True)
    assert selector.score(model) == facts["selected_scores"]
    assert facts["selected_scores"]["map@r"] == max(s["map@r"] for s in facts["selection_scores"])
    logged = (tmp_path / "live/plots/metrics/val/recall@1.tsv").read_text().splitlines()[1:]
    assert [float(line.split("\t")[1]) for line in logged] == [s["recall@1"] for s in facts["selection_scores"][1:]]


# Slow: three toy trainings (~7 s); the selection-metric and model-file tests keep best_val in the fast tier.
@pytest.mark.slow
def test_resume_keeps_the_best_so_far(prepared12, tmp_path, monkeypatch, small_held_out):
    monkeypatch.setattr(Selector, "score", scripted([0.1, 0.5, 0.9, 0.3]))
    straight = train(prepared12, tmp_path / "straight", "best_val")
    calls = {"n": 0}

    def stop_in_third_epoch(stop, where):
        calls["n"] += 1
        return calls["n"] == 7  # 3 batches per epoch (6, 6, 4): epoch 3, step 1, after the best epoch (2) was kept

    monkeypatch.setattr(loop, "_stop_everywhere", stop_in_third_epoch)
    with pytest.raises(DmlbenchError, match="stopped by SIGTERM at epoch 3"):
        train(prepared12, tmp_path / "resumed", "best_val")
    monkeypatch.setattr(loop, "_stop_everywhere", lambda stop, where: False)
    resumed = train(prepared12, tmp_path / "resumed", "best_val")
    assert resumed["training"] == straight["training"]
    assert all(torch.equal(straight["state_dict"][k], v) for k, v in resumed["state_dict"].items())


def test_best_test_selects_on_the_test_split_and_trains_on_every_class(prepared12, tmp_path):
    saved = train(prepared12, tmp_path, "best_test", epochs=1)
    assert len(saved["classes"]) == 6 and saved["training"]["select"] == "best_test"
    assert saved["training"]["selection_classes"] == 6  # the 6 test classes
    assert (tmp_path / "live/plots/metrics/test/recall@1.tsv").is_file()


def test_last_records_the_last_epoch(prepared12, tmp_path):
    saved = train(prepared12, tmp_path, "last", epochs=1)
    assert saved["training"]["select"] == "last" and saved["training"]["selected_epoch"] == 1
    # The input normalisation the transforms used travels with the model (a query rebuilds the transform from it).
    assert saved["training"]["normalization"] == {"mean": list(IMAGENET.mean), "std": list(IMAGENET.std),
                                                  "scale": 1.0, "bgr": False}


def _norm():
    from dmlbench.models.backbones import backbone_entry
    return backbone_entry("resnet18").normalization


def plateau_optimizer(cfg, model) -> Optimization:
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.1, patience=0)
    return Optimization(optimizer, plateau, stop_patience=2)


def test_plateau_schedule_and_early_stopping_follow_the_selection_score(prepared12, tmp_path, monkeypatch,
                                                                          small_held_out):
    monkeypatch.setattr(Selector, "score", scripted([0.1, 0.5, 0.4, 0.3, 0.9, 0.9]))
    method = dataclasses.replace(TOY, build_optimizer=plateau_optimizer)
    cfg = Toy(epochs=5)
    run = make_run(Experiment("toy", "resnet18", "synthetic", "uncropped", 0), "toy", cfg, {})
    loop.train(TrainJob(run, method, cfg, tcfg("best_val"), prepared12, tmp_path / "model.pt", tmp_path / "live",
               tmp_path / "checkpoint.pt"))
    facts = torch.load(tmp_path / "model.pt", weights_only=True)["training"]
    assert facts["trained_epochs"] == 3 and facts["selected_epoch"] == 1  # 2 epochs without a better score
    rates = [float(line.split("\t")[1]) for line in
             (tmp_path / "live/plots/metrics/train/lr.tsv").read_text().splitlines()[1:]]
    assert rates == pytest.approx([0.05, 0.05, 0.005])  # x0.1 after epoch 2's worse score (patience 0)
    with pytest.raises(DmlbenchError, match="set train.select: best_val"):
        loop.train(TrainJob(run, method, cfg, tcfg("last"), prepared12, tmp_path / "m2.pt", tmp_path / "l2",
                   tmp_path / "c2.pt"))
