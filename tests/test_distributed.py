"""DDP on CPU: 2 gloo processes must reproduce the single-process loss and gradients on the same global batch."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from dmlbench.data.sampler import DistributedPxKSampler, PxKSampler
from dmlbench.training.distributed import (
    SINGLE,
    TORCHRUN_ENV,
    Distributed,
    cleanup,
    device_for,
    gather_outputs,
    gather_with_grad,
    init_distributed,
    sum_over_ranks,
)
from dmlbench.errors import DmlbenchError
from dmlbench.losses.smoothed_ce import label_smoothed_cross_entropy
from dmlbench.losses.triplet import batch_hard_triplet

WORLD = 2
LABELS = [c for c in range(4) for _ in range(4)]  # 4 classes x 4 images
P, K, SEED, MARGIN = 4, 2, 7, 1.0  # a global batch of 8: each rank gets 2 whole classes


class TinyEmbedder(torch.nn.Module):
    """Linear 8 -> 4, L2-normalised embedding, plus a linear classifier on it (CGD's outputs)."""

    def __init__(self):
        super().__init__()
        self.embed, self.classify = torch.nn.Linear(8, 4), torch.nn.Linear(4, 4)

    def forward(self, x):
        embedding = F.normalize(self.embed(x), dim=1)
        return embedding, self.classify(embedding)


# In float64: DDP's all-reduce and the gather sum the same numbers in another order than one process does, and
# float32 would round that differently per CPU; float64 leaves ~1e-16, so the checks below hold to 1e-12.
def inputs() -> torch.Tensor:
    return torch.randn(len(LABELS), 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def tiny_model() -> TinyEmbedder:
    torch.manual_seed(0)
    return TinyEmbedder().double()


def losses(outputs, labels, embeddings, all_labels) -> tuple[torch.Tensor, torch.Tensor]:
    """CE on this process's rows, batch-hard triplet on the (gathered) whole batch."""
    classification = label_smoothed_cross_entropy(outputs[1], labels, smoothing=0.1, temperature=0.5)
    return classification, batch_hard_triplet(embeddings, all_labels, MARGIN)


def ddp_step(where: Distributed) -> dict:
    """One forward/backward of this rank's share of the global batch through DDP."""
    local = next(iter(DistributedPxKSampler(LABELS, P, K, SEED, rank=where.rank, world_size=where.world_size)))
    labels = torch.tensor(LABELS)[local]
    model = DistributedDataParallel(tiny_model())
    outputs = model(inputs()[local])
    (embeddings,), all_labels = gather_outputs((outputs[0],), labels)
    classification, triplet = losses(outputs, labels, embeddings, all_labels)
    (classification + triplet).backward()
    return {"where": where, "classification": classification.item(), "triplet": triplet.item(),
            "local_triplet": batch_hard_triplet(outputs[0].detach(), labels, MARGIN).item(),
            "labels": all_labels, "grads": {n: p.grad for n, p in model.module.named_parameters()}}


def gather_checks(where: Distributed) -> dict:
    """The raw gather convention, the count reduction, and the unequal-rows error."""
    x = torch.full((2, 3), float(where.rank), requires_grad=True)
    weights = torch.arange(12.0).reshape(4, 3)  # the same loss on every rank: sum(weights * gathered)
    gathered = gather_with_grad(x)
    (weights * gathered).sum().backward()
    try:
        gather_with_grad(torch.zeros(where.rank + 1, 3))
        unequal = ""
    except DmlbenchError as exc:
        unequal = str(exc)
    return {"gathered": gathered.detach(), "x_grad": x.grad, "unequal": unequal,
            "sums": sum_over_ranks({"seen": 4.0, "rank": float(where.rank)})}


def worker(rank: int, port: int, out_dir: str) -> None:
    """One torchrun-like process: the env torchrun would set, then both checks saved to rank{r}.pt."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    where = init_distributed("cpu")
    try:
        torch.save({**ddp_step(where), **gather_checks(where)}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    """Both ranks' results of one DDP step and the gather checks."""
    out_dir = tmp_path_factory.mktemp("ddp")
    # fork, after DDP's lazy torch._dynamo import: the children inherit it, ~2 s instead of ~12 s with spawn.
    # Safe as for DataLoader workers: the children run one thread and open their own gloo group.
    import torch._dynamo
    mp.start_processes(worker, args=(free_port(), str(out_dir)), nprocs=WORLD, start_method="fork")
    return [torch.load(out_dir / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def single_process() -> dict:
    batch = next(iter(PxKSampler(LABELS, P, K, SEED)))
    labels = torch.tensor(LABELS)[batch]
    model = tiny_model()
    outputs = model(inputs()[batch])
    classification, triplet = losses(outputs, labels, outputs[0], labels)
    (classification + triplet).backward()
    return {"classification": classification.item(), "triplet": triplet.item(), "labels": labels,
            "grads": {n: p.grad for n, p in model.named_parameters()}}


def test_ddp_loss_and_gradients_equal_single_process(ranks):
    ref = single_process()
    assert [r["where"] for r in ranks] == [Distributed(0, 2, 0, True), Distributed(1, 2, 1, False)]
    assert ref["triplet"] > 0.1  # the hinge is active: the triplet gradients are exercised
    for r in ranks:
        assert torch.equal(r["labels"], ref["labels"])  # gathered in rank order = the single-process batch
        assert r["triplet"] == pytest.approx(ref["triplet"], abs=1e-12)  # float64: the same sums, reordered
        assert r["local_triplet"] != pytest.approx(ref["triplet"], abs=1e-3)  # gathering matters here (by > 1e-3)
    # Equal per-rank sizes: the mean over ranks of local CE means (what DDP's averaging optimises) is the global one.
    mean_loss = sum(r["classification"] + r["triplet"] for r in ranks) / WORLD
    assert mean_loss == pytest.approx(ref["classification"] + ref["triplet"], abs=1e-12)  # float64 reordering
    for r in ranks:
        assert r["grads"].keys() == ref["grads"].keys()
        for name, grad in ref["grads"].items():
            assert torch.allclose(r["grads"][name], grad, rtol=0, atol=1e-12), name  # float64 all-reduce


def test_gather_backward_sums_the_same_loss_over_ranks(ranks):
    weights = torch.arange(12.0).reshape(4, 3)
    for rank, r in enumerate(ranks):
        assert torch.equal(r["gathered"], torch.tensor([0.0] * 6 + [1.0] * 6).reshape(4, 3))
        # Every rank's loss reaches rank r's rows: W x dL/dx_r, which DDP's mean over W turns into dL/dθ.
        assert torch.equal(r["x_grad"], WORLD * weights[2 * rank: 2 * rank + 2])
        assert r["sums"] == {"seen": 8.0, "rank": 1.0}


def test_unequal_rows_raise_on_every_rank(ranks):
    for r in ranks:
        assert "needs the same number of rows on every rank, got [1, 2] in rank order" in r["unequal"]


def test_without_torchrun_env_one_process_and_no_group(monkeypatch):
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)
    assert init_distributed("cpu") == SINGLE == Distributed(0, 1, 0, True)
    assert not dist.is_initialized()
    x, y = torch.ones(3, 2), torch.arange(3)
    assert gather_outputs((x,), y) == ((x,), y) and gather_with_grad(x) is x
    assert sum_over_ranks({"seen": 3.0}) == {"seen": 3.0}
    cleanup()  # nothing to leave: must not raise


def test_partial_torchrun_env_is_a_clear_error(monkeypatch):
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(DmlbenchError, match="WORLD_SIZE is set but RANK, LOCAL_RANK is not: launch with torchrun"):
        init_distributed("cpu")


def test_device_for_gives_each_process_its_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # device objects only: nothing runs on them
    assert device_for(Distributed(1, 2, 1, False), "cuda") == torch.device("cuda", 1)
    assert device_for(Distributed(1, 2, 1, False), "cpu") == torch.device("cpu")
    assert device_for(SINGLE, "cuda:0") == torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device_for(SINGLE, "auto") == torch.device("cpu")


def test_cuda_without_a_gpu_is_one_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DmlbenchError, match=r"train.device is 'cuda' but this machine has no CUDA GPU .*: set "
                                            r"train.device to auto or cpu"):
        device_for(SINGLE, "cuda")
