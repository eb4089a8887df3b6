"""Kill a training subprocess mid-epoch (SIGKILL, SIGTERM), resume it, and compare with an uninterrupted run."""

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
from dmlbench import stage
from dmlbench.identity import Experiment, make_run
from dmlbench.sections import TrainConfig
from dmlbench.methods import get_method
from dmlbench.methods.cgd import CGDConfig
from dmlbench.training.loop import train

prepared, out = Path(sys.argv[1]), Path(sys.argv[2])
cfg = CGDConfig(gd_config="SG", feature_dim=32, smoothing=0.1, temperature=0.5, margin=0.1, freeze_bn=False,
                classes_per_batch=2, images_per_class=2, lr=1e-3, epochs=2, lr_milestones=(0.5,),
                lr_gamma=0.1, train_resize=36, train_crop=32, test_resize=32)
tcfg = TrainConfig(device="cpu", workers=0, pretrained=False, deterministic=True, checkpoint_every_steps=1)
exp = Experiment("cgd", "resnet18", "synthetic", "uncropped", 0)
stage.run(lambda params: train(make_run(exp, "v", cfg, {}), get_method("cgd"), cfg, tcfg, prepared,
                               out / "model.pt", out / "live", out / "checkpoint.pt"))
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    write_synthetic(root / "raw", num_classes=8, images_per_class=6, image_size=40, seed=0)
    prepare_dataset(read_dataset("synthetic", root / "raw"), root / "raw", root / "prepared", False, 40)
    (root / "train.py").write_text(SCRIPT)
    (root / "params.yaml").write_text("{}\n")  # stage.run reads params.yaml from the working directory
    reference = root / "reference"
    subprocess.run([sys.executable, "train.py", "prepared", str(reference)], cwd=root, check=True,
                   capture_output=True)
    return root, reference


def start(root: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "train.py", "prepared", str(out)], cwd=root, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


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


def test_sigkill_mid_epoch_then_resume_equals_uninterrupted_run(setup):
    root, reference = setup
    out = root / "killed"
    process = start(root, out)
    wait_for_step(out / "checkpoint.pt", epoch=1, step=2)  # inside the second epoch (4 batches per epoch)
    process.send_signal(signal.SIGKILL)
    process.wait()
    progress = torch.load(out / "checkpoint.pt", weights_only=False)["progress"]
    assert progress["epoch"] == 1 and 0 < progress["step"] < 4 and not (out / "model.pt").exists()
    resumed = subprocess.run([sys.executable, "train.py", "prepared", str(out)], cwd=root, text=True,
                             capture_output=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout
    assert_same_run(out, reference)


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
    subprocess.run([sys.executable, "train.py", "prepared", str(out)], cwd=root, check=True, capture_output=True)
    assert_same_run(out, reference)
