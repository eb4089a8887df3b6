"""The training loop: one readable function per epoch, DVCLive logs per epoch, a NaN guard."""

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from dmlbench.data.image_dataset import ManifestDataset, class_list
from dmlbench.data.manifest import read_manifest
from dmlbench.errors import DmlbenchError
from dmlbench.experiment import Experiment, TrainConfig
from dmlbench.methods import Method
from dmlbench.model_file import save_model
from dmlbench.seeding import seed_everything, seed_worker


@dataclass
class EpochStats:
    """Means over the epoch's batches of every loss term, plus classifier accuracy."""

    terms: dict[str, float]
    accuracy: float
    seconds: float
    images: int


def resolve_device(name: str) -> torch.device:
    """'auto' picks the first CUDA GPU when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def train_one_epoch(model, method: Method, cfg, loader, optimizer, device, epoch: int) -> EpochStats:
    """One pass over the sampler's batches; stops on the first non-finite loss."""
    model.train()
    sums: dict[str, float] = {}
    correct = seen = 0
    start = time.perf_counter()
    for step, (images, labels) in enumerate(loader):
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        outputs = model(images)
        terms = method.loss(cfg, outputs, labels)
        values = {name: value.item() for name, value in terms.items()}
        if not all(math.isfinite(v) for v in values.values()):
            shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
            raise DmlbenchError(f"non-finite loss at epoch {epoch + 1}, step {step + 1} ({shown}): "
                                f"lower the learning rate or check the data")
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        for name, value in values.items():
            sums[name] = sums.get(name, 0.0) + value
        correct += (outputs[1].argmax(dim=1) == labels).sum().item()
        seen += labels.numel()
    steps = max(len(loader), 1)
    return EpochStats({k: v / steps for k, v in sums.items()}, correct / max(seen, 1),
                      time.perf_counter() - start, seen)


def train(exp: Experiment, method: Method, cfg, tcfg: TrainConfig, prepared: Path, model_path: Path,
          live_dir: Path) -> list[EpochStats]:
    """Train ``exp`` on ``prepared``/train.csv, log to DVCLive in ``live_dir``, save ``model_path``."""
    from dvclive import Live  # imported here: dvclive pulls in much of DVC

    generator = seed_everything(exp.seed)
    rows = read_manifest(prepared / "train.csv")
    classes = class_list(rows)
    dataset = ManifestDataset(prepared, rows, method.train_transform(cfg), classes)
    sampler = method.batch_sampler(cfg, dataset.labels, exp.seed)
    device = resolve_device(tcfg.device)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=tcfg.workers,
                        worker_init_fn=seed_worker, generator=generator,
                        pin_memory=device.type == "cuda", persistent_workers=tcfg.workers > 0)
    model = method.build_model(cfg, exp.backbone, len(classes), tcfg.pretrained).to(device)
    optimizer, scheduler = method.build_optimizer(cfg, model)
    history = []
    # dvcyaml=None: plots are declared in our own dvc.yaml; DVCLive must not edit it during a stage.
    with Live(dir=str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None) as live:
        for epoch in range(cfg.epochs):
            sampler.set_epoch(epoch)
            lr = optimizer.param_groups[0]["lr"]
            stats = train_one_epoch(model, method, cfg, loader, optimizer, device, epoch)
            scheduler.step()
            for name, value in stats.terms.items():
                live.log_metric(f"train/{name}", value)
            live.log_metric("train/accuracy", stats.accuracy)
            live.log_metric("train/lr", lr)
            live.next_step()
            history.append(stats)
            print(f"epoch {epoch + 1}/{cfg.epochs}: loss {stats.terms['loss']:.4f} "
                  f"acc {stats.accuracy:.3f} lr {lr:.2e} {stats.images / stats.seconds:.1f} img/s", flush=True)
    save_model(model_path, exp, cfg, classes, model)
    return history
