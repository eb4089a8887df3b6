"""NormSoftmax's warm-up epoch: only the embedding layer and the classifier move; then everything trains."""

from pathlib import Path

import pytest
import torch

from dmlbench.identity import Experiment, make_run
from dmlbench.params.sections import TrainConfig
from dmlbench.methods import get_method
from dmlbench.methods.normsoftmax import NormSoftmaxConfig
from dmlbench.training.loop import TrainJob, train

EXP = Experiment("normsoftmax", "resnet18", "synthetic", "uncropped", 0)
CFG = NormSoftmaxConfig(feature_dim=16, temperature=0.05, classes_per_batch=2, images_per_class=2, lr=0.01,
                        momentum=0.9, weight_decay=1e-4, warmup_epochs=1, epochs=0, lr_step_fraction=0.5,
                        lr_gamma=0.1, train_resize=36, train_crop=32, test_resize=36, test_crop=32)
TCFG = TrainConfig(device="cpu", workers=0, pretrained=False, deterministic=False, checkpoint_every_steps=0)


def trained(prepared, out: Path, cfg) -> dict:
    history = train(TrainJob(make_run(EXP, "v", cfg, {}), get_method("normsoftmax"), cfg, TCFG, prepared,
                    out / "model.pt", out / "live", out / "checkpoint.pt"))
    assert len(history) == cfg.warmup_epochs + cfg.epochs
    return torch.load(out / "model.pt", weights_only=True)["state_dict"]


def initial() -> dict:
    torch.manual_seed(0)  # train() seeds the same way before building the model
    return get_method("normsoftmax").build_model(CFG, "resnet18", 3, False, 0).state_dict()


def test_warmup_epoch_leaves_the_backbone_weights_unchanged(prepared, tmp_path):
    before, after = initial(), trained(prepared, tmp_path, CFG)
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    head = {"embedding.weight", "embedding.bias", "classifier.weight"}
    assert head <= moved  # the head trained
    trunk_weights = {k for k in before if k.startswith("trunk.") and not k.endswith(
        ("running_mean", "running_var", "num_batches_tracked"))}
    assert not trunk_weights & moved  # no backbone parameter stepped (not even by weight decay)
    assert "trunk.1.running_mean" in moved  # BatchNorm statistics still update: train mode


def test_after_warmup_the_backbone_trains_and_the_schedule_starts(prepared, tmp_path):
    cfg = NormSoftmaxConfig(**{**CFG.__dict__, "epochs": 2})
    before, after = initial(), trained(prepared, tmp_path, cfg)
    assert not torch.equal(before["trunk.0.weight"], after["trunk.0.weight"])
    lr_rows = (tmp_path / "live/plots/metrics/train/lr.tsv").read_text().splitlines()[1:]
    # StepLR(int(0.5 x 2) = 1): warm-up at lr, main epoch 1 at lr, main epoch 2 at lr x 0.1 (float64 products,
    # logged as text: approx's 1e-6 relative is far above their rounding).
    assert [float(row.split("\t")[1]) for row in lr_rows] == pytest.approx([0.01, 0.01, 0.001])
