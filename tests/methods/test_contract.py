"""The method contract, exercised with a tiny proxy method: trained proxies at their own learning rate, a frozen
backbone inside the epochs, plain shuffled batches, no classifier accuracy; resumed mid-epoch byte-identically."""

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dmlbench.data.sampler import ShuffledBatchSampler
from dmlbench.data.transforms import eval_preset, train_preset
from dmlbench.errors import DmlbenchError
from dmlbench.identity import Experiment, make_run
from dmlbench.methods.method import Method
from dmlbench.methods.optimization import Optimization
from dmlbench.models.backbones import build_trunk
from dmlbench.params.sections import TrainConfig
from dmlbench.training import loop


@dataclass(frozen=True)
class ToyConfig:
    lr: float = 0.01
    proxy_lr_ratio: float = 100.0
    epochs: int = 3
    frozen_epochs: int = 1
    batch_size: int = 4


class ToyProxyModel(nn.Module):
    """A ResNet-18 trunk -> max pooling -> Linear -> L2, with class proxies that live in the model."""

    def __init__(self, num_classes: int, seed: int):
        super().__init__()
        self.trunk = build_trunk("resnet18", False)
        self.embedding = nn.Linear(512, 8, bias=False)
        generator = torch.Generator().manual_seed(seed)  # the builder draws from the run's seed
        self.proxies = nn.Parameter(torch.randn(num_classes, 8, generator=generator))

    def forward(self, x):
        embedding = F.normalize(self.embedding(self.trunk(x).amax(dim=(2, 3))), dim=1)
        return embedding, embedding @ F.normalize(self.proxies, dim=1).T


def toy_optimizer(cfg, model) -> Optimization:
    head = [model.embedding.weight]
    optimizer = torch.optim.Adam([{"params": [*model.trunk.parameters(), *head], "lr": cfg.lr},
                                  {"params": [model.proxies], "lr": cfg.lr * cfg.proxy_lr_ratio, "name": "proxies"}])
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    return Optimization(optimizer, scheduler, frozen_epochs=cfg.frozen_epochs,
                        frozen_trainable=[*head, model.proxies])


TOY = Method(name="toy", config_cls=ToyConfig,
             build_model=lambda cfg, backbone, classes, pretrained, seed: ToyProxyModel(classes, seed),
             loss=lambda cfg, outputs, labels: {"loss": F.cross_entropy(outputs[1] * 16, labels)},
             build_optimizer=toy_optimizer,
             batch_sampler=lambda cfg, labels, seed: ShuffledBatchSampler(len(labels), cfg.batch_size, seed),
             train_transform=lambda cfg, norm: train_preset(36, 32, norm),
             test_transform=lambda cfg, norm: eval_preset(32, None, norm),
             image_sizes=lambda cfg: {"train": 32, "test": 32, "resize": 36},
             describe=lambda cfg: "toy")  # correct=None: no classifier accuracy is logged
EXP = Experiment("toy", "resnet18", "synthetic", "uncropped", 0)
TCFG = TrainConfig(device="cpu", workers=0, pretrained=False, deterministic=False, checkpoint_every_steps=1)


def train_toy(prepared: Path, out: Path, cfg=ToyConfig()) -> list[dict]:
    return loop.train(loop.TrainJob(make_run(EXP, "toy", cfg, {}), TOY, cfg, TCFG, prepared, out / "model.pt",
                                    out / "live", out / "checkpoint.pt"))


def logged(out: Path, name: str) -> list[float]:
    rows = (out / "live/plots/metrics/train" / f"{name}.tsv").read_text().splitlines()[1:]
    return [float(row.split("\t")[1]) for row in rows]


def state(path: Path) -> dict:
    return torch.load(path, weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def full_run(prepared, tmp_path_factory) -> tuple[Path, list[dict]]:
    """One uninterrupted run of ToyConfig() (its folder and history), which the tests read or copy, never change."""
    out = tmp_path_factory.mktemp("full")
    return out, train_toy(prepared, out)


def test_proxies_train_at_their_own_rate_and_the_frozen_epoch_leaves_the_backbone(prepared, full_run, tmp_path):
    torch.manual_seed(0)  # train() seeds the same way before building the model
    initial = ToyProxyModel(3, 0).state_dict()
    train_toy(prepared, tmp_path / "frozen", ToyConfig(epochs=1))  # the whole run is the frozen epoch
    after = state(tmp_path / "frozen/model.pt")
    trunk = [k for k in initial if k.startswith("trunk.") and "running" not in k and "num_batches" not in k]
    assert all(torch.equal(initial[k], after[k]) for k in trunk)  # no backbone parameter moved
    assert not torch.equal(initial["proxies"], after["proxies"])  # the proxies are trained and saved
    assert not torch.equal(initial["embedding.weight"], after["embedding.weight"])

    full, history = full_run
    # Learning rates are lr x gamma^k in float64, logged as text: approx's 1e-6 relative is far above rounding.
    assert logged(full, "lr") == pytest.approx([0.01, 0.005, 0.0025])  # StepLR through all epochs
    assert logged(full, "lr_proxies") == pytest.approx([1.0, 0.5, 0.25])
    assert not (full / "live/plots/metrics/train/accuracy.tsv").exists()  # no classifier: no accuracy
    assert all(h["accuracy"] is None for h in history)
    assert not torch.equal(state(full / "model.pt")["trunk.0.weight"], initial["trunk.0.weight"])


@pytest.mark.slow  # two more training runs (the interrupted one and its resumption)
def test_interrupted_mid_epoch_then_resumed_equals_an_uninterrupted_run(prepared, full_run, tmp_path, monkeypatch):
    calls = {"n": 0}

    def stop_at_fifth_step(stop, where):
        calls["n"] += 1
        return calls["n"] == 5  # epoch 2 of 3 (3 shuffled batches per epoch), mid-epoch

    monkeypatch.setattr(loop, "_stop_everywhere", stop_at_fifth_step)
    with pytest.raises(DmlbenchError, match="stopped by SIGTERM at epoch 2, step 2"):
        train_toy(prepared, tmp_path / "resumed")
    monkeypatch.undo()
    train_toy(prepared, tmp_path / "resumed")
    for name in ("model.pt", "live/plots/metrics/train/loss.tsv", "live/plots/metrics/train/lr_proxies.tsv"):
        assert (full_run[0] / name).read_bytes() == (tmp_path / "resumed" / name).read_bytes(), name


@pytest.mark.slow  # a whole training run that then fails
def test_a_failed_run_keeps_the_previous_logs(prepared, full_run, tmp_path, monkeypatch):
    shutil.copytree(full_run[0], tmp_path, dirs_exist_ok=True)  # a finished run's folder
    before = (tmp_path / "live/plots/metrics/train/loss.tsv").read_bytes()
    monkeypatch.setattr(loop, "check_finite_weights", lambda *a: (_ for _ in ()).throw(DmlbenchError("diverged")))
    with pytest.raises(DmlbenchError, match="diverged"):
        train_toy(prepared, tmp_path, dataclasses.replace(ToyConfig(), lr=0.02))  # another run key: starts over
    assert (tmp_path / "live/plots/metrics/train/loss.tsv").read_bytes() == before
    assert not (tmp_path / ".live.partial").exists()


def test_non_finite_weights_after_training_are_refused(tmp_path):
    model = nn.Linear(2, 2)
    loop.check_finite_weights(model, "run-a", "toy")
    with torch.no_grad():
        model.weight[0, 0] = float("inf")
    with pytest.raises(DmlbenchError, match=r"train: run run-a: 1 weight tensor\(s\) are not finite after training "
                                            r"\(first: weight\): the model diverged; lower toy.lr"):
        loop.check_finite_weights(model, "run-a", "toy")


def test_shuffled_batches_cover_each_image_once_and_follow_seed_and_epoch():
    sampler = ShuffledBatchSampler(10, 3, seed=4)
    epoch0 = list(sampler)
    # 3, 3 and 4: the last partial batch is kept, and a lone 10th image joins the batch before it
    assert len(epoch0) == len(sampler) == 3 and sorted(i for b in epoch0 for i in b) == list(range(10))
    sampler.set_epoch(1)
    assert list(sampler) != epoch0
    sampler.set_epoch(0)
    assert list(sampler) == epoch0 == list(ShuffledBatchSampler(10, 3, seed=4))
    even = ShuffledBatchSampler(12, 4, seed=4)  # 3 full batches: 2 processes see one process's batches
    halves = [even.for_rank(r, 2) for r in range(2)]
    assert [a + b for a, b in zip(*map(list, halves))] == list(even) and halves[1].offset == 2
    with pytest.raises(DmlbenchError, match="a batch of 11 images does not fit the 10 training images"):
        ShuffledBatchSampler(10, 11, seed=0)
