"""train() at fp16 on the CPU: the loss scaler is checkpointed and restored, the NaN guard still stops a run."""

import dataclasses
from pathlib import Path

import pytest
import torch

from dmlbench.identity import Experiment, make_run
from dmlbench.params.sections import TrainConfig
from dmlbench.methods import get_method
from dmlbench.methods.cgd import CGDConfig
from dmlbench.training.loop import TrainJob, train

EXP = Experiment("cgd", "resnet18", "synthetic", "uncropped", 0)
CFG = CGDConfig(gd_config="SG", feature_dim=32, smoothing=0.1, temperature=0.5, margin=0.1, freeze_bn=False,
                classes_per_batch=2, images_per_class=2, lr=1e-3, epochs=1, lr_milestones=(0.5,),
                lr_gamma=0.1, train_resize=36, train_crop=32, test_resize=32)
FP16 = TrainConfig(device="cpu", workers=0, pretrained=False, deterministic=False, checkpoint_every_steps=0,
                   precision="fp16")


def run(prepared, out: Path, tcfg=FP16, method=None):
    return train(TrainJob(make_run(EXP, "v", CFG, {}), method or get_method("cgd"), CFG, tcfg, prepared,
                 out / "model.pt", out / "live", out / "checkpoint.pt"))


@pytest.mark.slow  # three training runs, one of them in fp16 (seconds per step on the CPU)
def test_fp16_scaler_is_checkpointed_restored_and_part_of_the_key(prepared, tmp_path, capsys, monkeypatch):
    run(prepared, tmp_path)
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=False)["scaler"]
    assert saved != torch.amp.GradScaler("cpu").state_dict()  # it stepped: skipped steps halve its scale
    restored = []
    load = torch.amp.GradScaler.load_state_dict
    monkeypatch.setattr(torch.amp.GradScaler, "load_state_dict",
                        lambda self, state: (restored.append(state), load(self, state)))
    run(prepared, tmp_path)  # same params: resumes at the end and restores the scaler
    assert "resuming from" in capsys.readouterr().out and restored == [saved]
    run(prepared, tmp_path, tcfg=dataclasses.replace(FP16, precision="fp32"))
    assert "comes from other params or code; starting fresh" in capsys.readouterr().out
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["scaler"] is None


def test_model_file_weights_are_contiguous_after_channels_last_training(prepared, tmp_path):
    run(prepared, tmp_path, tcfg=dataclasses.replace(FP16, precision="fp32", channels_last=True))
    weights = torch.load(tmp_path / "model.pt", weights_only=True)["state_dict"]
    assert weights["trunk.0.weight"].dim() == 4 and all(w.is_contiguous() for w in weights.values())

