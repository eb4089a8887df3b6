import dataclasses
import shutil
from pathlib import Path

import pytest
import torch

from dmlbench.errors import DmlbenchError
from dmlbench.identity import Experiment, make_run
from dmlbench.params.sections import TrainConfig
from dmlbench.methods import get_method
from dmlbench.methods.cgd import CGDConfig
from dmlbench.training import loop
from dmlbench.training.loop import TrainJob, train

EXP = Experiment("cgd", "resnet18", "synthetic", "uncropped", 0)
CFG = CGDConfig(gd_config="SG", feature_dim=32, smoothing=0.1, temperature=0.5, margin=0.1, freeze_bn=False,
                classes_per_batch=2, images_per_class=2, lr=1e-3, epochs=2, lr_milestones=(0.5,),
                lr_gamma=0.1, train_resize=36, train_crop=32, test_resize=32)
TCFG = TrainConfig(device="cpu", workers=0, pretrained=False, deterministic=False, checkpoint_every_steps=0)


def run(prepared, out: Path, cfg=CFG, tcfg=TCFG, method=None):
    return train(TrainJob(make_run(EXP, "v", cfg, {}), method or get_method("cgd"), cfg, tcfg, prepared,
                 out / "model.pt", out / "live", out / "checkpoint.pt"))


def weights(path: Path) -> dict:
    return torch.load(path, weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def reference(prepared, tmp_path_factory) -> tuple[Path, list]:
    """One run with the default config (its folder and history), which the tests read or copy, never change."""
    out = tmp_path_factory.mktemp("reference")
    return out, run(prepared, out)


def test_train_logs_every_epoch_and_saves_the_model(reference):
    tmp_path, history = reference
    assert len(history) == 2 and all(h["images"] == 3 * 4 for h in history)  # 12 train images // 4 = 3 batches
    assert set(history[0]["terms"]) == {"loss", "classification", "triplet"}
    lr_rows = (tmp_path / "live/plots/metrics/train/lr.tsv").read_text().splitlines()
    # lr x gamma in float64, logged as text: approx's 1e-6 relative is far above its rounding.
    assert [float(row.split("\t")[1]) for row in lr_rows[1:]] == pytest.approx([1e-3, 1e-4])
    saved = torch.load(tmp_path / "model.pt", weights_only=True)
    assert saved["classes"] == [1, 2, 3] and saved["config"]["gd_config"] == "SG"


def test_same_seed_gives_identical_weights_and_logs(prepared, reference, tmp_path):
    # A second run in this process, after other tests moved the global random state: the run seeds itself.
    run(prepared, tmp_path)
    a, b = weights(reference[0] / "model.pt"), weights(tmp_path / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    for name in ("live/plots/metrics/train/loss.tsv", "checkpoint.pt", "model.pt"):  # byte-reproducible
        assert (reference[0] / name).read_bytes() == (tmp_path / name).read_bytes(), name


@pytest.mark.slow  # a training run with two DataLoader processes
def test_worker_processes_do_not_change_the_result(prepared, reference, tmp_path):
    run(prepared, tmp_path, tcfg=dataclasses.replace(TCFG, workers=2))
    a, b = weights(reference[0] / "model.pt"), weights(tmp_path / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow  # two more training runs
def test_finished_checkpoint_is_reused_and_changed_params_start_fresh(prepared, reference, tmp_path, capsys):
    shutil.copytree(reference[0], tmp_path, dirs_exist_ok=True)  # a finished run of the default config
    first = weights(tmp_path / "model.pt")
    run(prepared, tmp_path)  # same params: resumes at the end, trains nothing, same model
    assert "resuming from" in capsys.readouterr().out
    assert all(torch.equal(first[k], v) for k, v in weights(tmp_path / "model.pt").items())
    other = dataclasses.replace(CFG, lr=5e-4)
    run(prepared, tmp_path, cfg=other)
    assert "comes from other params or code; starting fresh" in capsys.readouterr().out
    run(prepared, tmp_path / "fresh", cfg=other)
    fresh = weights(tmp_path / "fresh/model.pt")
    assert all(torch.equal(fresh[k], v) for k, v in weights(tmp_path / "model.pt").items())


def test_a_checkpoint_from_other_code_is_not_resumed(prepared, reference, tmp_path, capsys, monkeypatch):
    # DVC reruns train when the code changes; a finished checkpoint must not hand back the old code's weights.
    shutil.copytree(reference[0], tmp_path, dirs_exist_ok=True)  # a finished run of this code
    monkeypatch.setattr(loop, "code_digest", lambda: "another-code")
    run(prepared, tmp_path)
    assert "comes from other params or code; starting fresh" in capsys.readouterr().out


# fp16: the loss scaler must not hide a NaN loss (slow: CPU fp16 takes seconds per step)
@pytest.mark.parametrize("precision", ["fp32", pytest.param("fp16", marks=pytest.mark.slow)])
def test_non_finite_loss_stops_with_epoch_step_and_terms(prepared, tmp_path, precision):
    def nan_loss(cfg, outputs, labels):
        zero = outputs[0].sum() * 0
        return {"loss": zero + float("nan"), "triplet": zero}

    method = dataclasses.replace(get_method("cgd"), loss=nan_loss)
    tcfg = dataclasses.replace(TCFG, precision=precision)
    with pytest.raises(DmlbenchError, match=r"non-finite loss at epoch 1, step 1 \(loss=nan, triplet=0\)"):
        run(prepared, tmp_path, tcfg=tcfg, method=method)
    assert not (tmp_path / "model.pt").exists()


def test_zero_epochs_saves_the_untrained_model_and_an_empty_log(prepared, tmp_path):
    history = run(prepared, tmp_path, cfg=dataclasses.replace(CFG, epochs=0))
    assert history == [] and (tmp_path / "live/plots").is_dir() and (tmp_path / "model.pt").is_file()
    assert (tmp_path / "checkpoint.pt").is_file()


def test_an_exploding_learning_rate_stops_the_run_without_a_model_file(prepared, tmp_path):
    """Adam moves every weight by about lr per step: at 1e30 the activations overflow float32 at once."""
    with pytest.raises(DmlbenchError, match=r"non-finite loss|not finite after training"):
        run(prepared, tmp_path, dataclasses.replace(CFG, lr=1e30))
    assert not (tmp_path / "model.pt").exists() and not (tmp_path / "live").exists()
