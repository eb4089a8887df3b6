"""Kill a training subprocess mid-epoch (SIGKILL, SIGTERM), resume it, and compare with an uninterrupted run."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dmlbench.data.prepare import prepare_dataset
from dmlbench.data.readers import read_dataset
from dmlbench.data.synthetic import write_synthetic

SCRIPT = """
import sys
from pathlib import Path
from dmlbench.pipeline import stage
from dmlbench.identity import Experiment, make_run
from dmlbench.params.sections import TrainConfig
from dmlbench.methods import get_method
from dmlbench.methods.cgd import CGDConfig
from dmlbench.training.loop import TrainJob, train

prepared, out = Path(sys.argv[1]), Path(sys.argv[2])
cfg = CGDConfig(gd_config="SG", feature_dim=32, smoothing=0.1, temperature=0.5, margin=0.1, freeze_bn=False,
                classes_per_batch=2, images_per_class=2, lr=1e-3, epochs=2, lr_milestones=(0.5,),
                lr_gamma=0.1, train_resize=36, train_crop=32, test_resize=32)
tcfg = TrainConfig(device="cpu", workers=0, pretrained=False, deterministic=True, checkpoint_every_steps=1)
exp = Experiment("cgd", "resnet18", "synthetic", "uncropped", 0)
stage.run(lambda: train(TrainJob(make_run(exp, "v", cfg, {}), get_method("cgd"), cfg, tcfg, prepared,
                               out / "model.pt", out / "live", out / "checkpoint.pt")))
"""


REPO = Path(__file__).resolve().parents[1]


def env(root: Path) -> dict:
    """The subprocesses import the package from a copy taken once: the checkpoint's key holds a digest of the
    sources, so an edit of src/ between the killed run and its resume would (rightly) start training afresh."""
    return {**os.environ, "PYTHONPATH": str(root / "src")}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    shutil.copytree(REPO / "src/dmlbench", root / "src/dmlbench", ignore=shutil.ignore_patterns("__pycache__"))
    write_synthetic(root / "raw", num_classes=8, images_per_class=6, image_size=40, seed=0)
    prepare_dataset(read_dataset("synthetic", root / "raw"), root / "raw", root / "prepared", False, 40)
    (root / "train.py").write_text(SCRIPT)
    reference = root / "reference"
    subprocess.run([sys.executable, "train.py", "prepared", str(reference)], cwd=root, check=True,
                   capture_output=True, env=env(root))
    return root, reference


def start(root: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "train.py", "prepared", str(out)], cwd=root, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(root))


def finish(root: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "train.py", "prepared", str(out)], cwd=root, text=True,
                          capture_output=True, env=env(root))


def wait_for_step(checkpoint: Path, epoch: int, step: int, timeout: float = 120) -> None:
    """Poll the (atomically replaced) checkpoint until training reached ``epoch``/``step``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if checkpoint.is_file():
            progress = torch.load(checkpoint, weights_only=False)["progress"]
            if (progress["epoch"], progress["step"]) >= (epoch, step):
                return
        time.sleep(0.02)
    raise TimeoutError(f"training never reached epoch {epoch} step {step}")


def assert_same_run(out: Path, reference: Path) -> None:
    ours, theirs = (torch.load(p / "model.pt", weights_only=True)["state_dict"] for p in (out, reference))
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    for log in sorted((reference / "live/plots/metrics/train").glob("*.tsv")):
        assert (out / "live/plots/metrics/train" / log.name).read_bytes() == log.read_bytes(), log.name


def train_seconds(out: Path) -> float:
    return json.loads((out / "provenance.json").read_text())["train_seconds"]


def elapsed_record(out: Path) -> dict:
    return json.loads((out / "checkpoint.elapsed.json").read_text())


# Slow: a subprocess training killed and resumed (15-30 s); in-process resume stays fast in the contract tests.
@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_equals_uninterrupted_run(setup):
    root, reference = setup
    out = root / "killed"
    began = time.perf_counter()
    process = start(root, out)
    wait_for_step(out / "checkpoint.pt", epoch=1, step=2)  # inside the second epoch (4 batches per epoch)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_wall = time.perf_counter() - began
    progress = torch.load(out / "checkpoint.pt", weights_only=False)["progress"]
    assert progress["epoch"] == 1 and 0 < progress["step"] < 4 and not (out / "model.pt").exists()
    before = elapsed_record(out)  # the killed process's seconds, up to its last checkpoint
    assert 0 < before["seconds"] < killed_wall and (before["epoch"], before["step"]) <= (1, progress["step"])
    began = time.perf_counter()
    resumed = finish(root, out)
    resumed_wall = time.perf_counter() - began
    assert resumed.returncode == 0, resumed.stderr
    assert f"({before['seconds']:.1f} s of training before)" in resumed.stdout
    assert_same_run(out, reference)
    # Both processes' training time, not only the resumed one's (which once reported 5.6 s of an 11.6 s training).
    # 0.05: provenance rounds to 0.1 s; the resumed process's own share lies inside its wall time.
    total = train_seconds(out)
    assert before["seconds"] - 0.05 <= total and total - before["seconds"] <= resumed_wall + 0.05
    assert total > before["seconds"]

    finished = elapsed_record(out)["seconds"]  # written with the last checkpoint
    again = finish(root, out)
    assert again.returncode == 0 and "resuming from" in again.stdout, again.stderr
    # A finished run resumed (dvc repro after a dependency changed) reports the training's cost, not its ~2 s.
    assert train_seconds(out) >= finished - 0.05 and finished >= before["seconds"]


# Slow: a subprocess training killed and resumed (15-30 s); in-process resume stays fast in the contract tests.
@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_with_one_line(setup):
    root, reference = setup
    out = root / "terminated"
    process = start(root, out)
    wait_for_step(out / "checkpoint.pt", epoch=0, step=1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2
    assert stderr.strip().startswith("dmlbench: error: stopped by SIGTERM at epoch")
    assert "checkpoint saved" in stderr
    assert finish(root, out).returncode == 0
    assert_same_run(out, reference)


def test_the_elapsed_record_counts_only_for_its_own_training_and_position(tmp_path):
    from dmlbench.training.checkpoint import Progress, elapsed_path, load_elapsed, save_elapsed

    checkpoint = tmp_path / "train.pt"
    at = Progress(epoch=2, step=3)
    assert elapsed_path(checkpoint) == tmp_path / "train.elapsed.json"
    assert load_elapsed(checkpoint, "key", at) == 0.0  # none recorded (a fresh start)
    save_elapsed(checkpoint, "key", at, 12.3456)
    assert load_elapsed(checkpoint, "key", at) == 12.346  # rounded to the millisecond
    assert load_elapsed(checkpoint, "other", at) == 0.0  # another training's record
    assert load_elapsed(checkpoint, "key", Progress(epoch=3, step=0)) == 12.346  # one save behind: still counts
    assert load_elapsed(checkpoint, "key", Progress(epoch=2, step=2)) == 0.0  # ahead of the checkpoint: not its
    for bad in ("{not json", "[]", '{"fingerprint": "key", "epoch": 2, "step": 3, "seconds": NaN}',
                '{"fingerprint": "key", "epoch": 2, "step": 3, "seconds": -1}',
                '{"fingerprint": "key", "epoch": "2", "step": 3, "seconds": 1}'):
        elapsed_path(checkpoint).write_text(bad)
        assert load_elapsed(checkpoint, "key", at) == 0.0, bad
