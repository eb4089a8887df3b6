"""The training loop under torchrun with 2 CPU processes (gloo): rank 0 alone writes, the run resumes, and the
loss stays that of one process (exact gradient equality of the DDP step itself: tests/test_distributed.py)."""

import os
import subprocess
import sys

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

if "--float64" in sys.argv:  # the network, its images (ToTensor's default dtype) and Adam's state in float64
    import torch
    torch.set_default_dtype(torch.float64)
if "--frozen-aux-bn" in sys.argv:  # the auxiliary BatchNorm1d, the one layer computed per rank, in eval mode
    import dmlbench.models.cgd as cgd_model
    plain_train = cgd_model.CGD.train
    def train_frozen_aux_bn(self, mode=True):
        plain_train(self, mode)
        self.classifier[0].eval()
        return self
    cgd_model.CGD.train = train_frozen_aux_bn

prepared, out = Path(sys.argv[1]), Path(sys.argv[2])
cfg = CGDConfig(gd_config="SG", feature_dim=32, smoothing=0.1, temperature=0.5, margin=0.1, freeze_bn=True,
                classes_per_batch=4, images_per_class=2, lr=1e-3, epochs=2, lr_milestones=(0.5,),
                lr_gamma=0.1, train_resize=36, train_crop=32, test_resize=32)
tcfg = TrainConfig(device="cpu", workers=0, pretrained=False, deterministic=False, checkpoint_every_steps=0,
                   precision="fp32", channels_last=False)
exp = Experiment("cgd", "resnet18", "synthetic", "uncropped", 0)
stage.run(lambda: train(TrainJob(make_run(exp, "v", cfg, {}), get_method("cgd"), cfg, tcfg, prepared,
                               out / "model.pt", out / "live", out / "checkpoint.pt")))
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    write_synthetic(root / "raw", num_classes=8, images_per_class=6, image_size=40, seed=0)
    prepare_dataset(read_dataset("synthetic", root / "raw"), root / "raw", root / "prepared", False, 40)
    (root / "train.py").write_text(SCRIPT)
    (root / "params.yaml").write_text("{}\n")
    return root


def run(root, out: str, nproc: int, *extra: str) -> str:
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] if nproc > 1 else []
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, *launcher, "train.py", "prepared", out, *extra], cwd=root, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def logged(root, out: str, name: str) -> list[float]:
    rows = (root / out / "live/plots/metrics/train" / f"{name}.tsv").read_text().splitlines()[1:]
    return [float(row.split("\t")[1]) for row in rows]


# In float64: one process and two sum the same gradients in another order (DDP's all-reduce), and over two epochs
# Adam's first steps (lr x sign of a gradient) amplify float32's rounding into 5e-4 of the loss on one CPU and not
# on another (AVX-512/AMX vs AMD). In float64 that rounding is ~1e-16; the loss itself still runs in float32 on
# outputs that round to the same float32 values, so the logged terms agree to float32's 6e-8 per rounding.
EXACT = ("--frozen-aux-bn", "--float64")


def logged_terms(root, out: str) -> dict[str, list[float]]:
    return {name: logged(root, out, name) for name in ("loss", "classification", "triplet", "accuracy")}


@pytest.fixture(scope="module")
def one_process(root) -> dict[str, list[float]]:
    """The logged terms of the reference run: one process, float64, the auxiliary BatchNorm frozen."""
    run(root, "one", 1, *EXACT)
    return logged_terms(root, "one")


def assert_same_training(ours: dict, reference: dict) -> None:
    assert len(reference["loss"]) == 2  # both epochs: the second one starts from weights the first one trained
    for name, values in reference.items():
        # 1e-6: a few float32 roundings (6e-8 each) of the loss terms; a wrong shard, gather or gradient average
        # moves them by percents.
        assert ours[name] == pytest.approx(values, rel=1e-6), name


@pytest.mark.slow
def test_two_processes_train_exactly_like_one(root, one_process):
    # Same global batches, augmentations and whole-batch loss: with the one per-rank layer (the auxiliary
    # BatchNorm1d, whose batch statistics would cover each rank's half) frozen, every logged number agrees.
    run(root, "ddp", 2, *EXACT)
    assert_same_training(logged_terms(root, "ddp"), one_process)


@pytest.mark.slow
def test_rank_zero_alone_writes_and_a_finished_run_resumes(root):
    printed = run(root, "plain", 2)
    assert printed.count("epoch 1/2") == 1 and printed.count("epoch 2/2") == 1  # rank 0 alone reports
    assert torch.load(root / "plain/model.pt", weights_only=True)["classes"] == [1, 2, 3, 4]
    assert all(0 <= a <= 1 for a in logged(root, "plain", "accuracy"))
    again = run(root, "plain", 2)  # a finished run resumes at its end and trains nothing
    assert "resuming from" in again and "epoch 1/2" not in again


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_on_one_host_train_exactly_like_one_process(root, one_process):
    # Two launchers, one process each, meeting at a c10d rendezvous endpoint: what `torchrun --nnodes 2
    # --rdzv-endpoint host:port` does across machines (README, "Speed and scale"), simulated on 127.0.0.1.
    endpoint = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1",
                               "--rdzv-backend=c10d", f"--rdzv-endpoint={endpoint}", "--rdzv-id=dmlbench-test",
                               "train.py", "prepared", "nodes", *EXACT],
                              cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    assert all(node.returncode == 0 for node in nodes), "\n".join(outputs)
    assert sum(output.count("epoch 2/2") for output in outputs) == 1  # one rank 0 across the two nodes
    assert_same_training(logged_terms(root, "nodes"), one_process)
