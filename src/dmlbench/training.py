"""The training loop: one readable function per epoch; checkpoint/resume, SIGTERM, NaN guard, DVCLive logs."""

import dataclasses
import hashlib
import math
import os
import signal
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from dmlbench.checkpoint import (Progress, SeededBatches, fingerprint, load_checkpoint, save_checkpoint,
                                 set_rng_state)
from dmlbench.data.image_dataset import ManifestDataset, class_list
from dmlbench.data.manifest import read_manifest
from dmlbench.errors import DmlbenchError
from dmlbench.experiment import Experiment, TrainConfig
from dmlbench.methods import Method
from dmlbench.model_file import save_model
from dmlbench.seeding import seed_everything, seed_worker


def resolve_device(name: str) -> torch.device:
    """'auto' picks the first CUDA GPU when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class StopRequest:
    """Turns SIGTERM (preemption, `kill`) into a flag the loop checks after each step."""

    def __init__(self):
        self.requested = False
        self.previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def restore(self) -> None:
        signal.signal(signal.SIGTERM, self.previous)


def train_one_epoch(model, method: Method, cfg, loader, optimizer, device, progress: Progress,
                    after_step) -> float:
    """One pass over the epoch's remaining batches, accumulating into ``progress``; returns its seconds.

    Stops on a non-finite loss. Timings stay out of ``progress``: checkpoints must be byte-reproducible.
    """
    model.train()
    start = time.perf_counter()
    for images, labels in loader:
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        outputs = model(images)
        terms = method.loss(cfg, outputs, labels)
        values = {name: value.item() for name, value in terms.items()}
        if not all(math.isfinite(v) for v in values.values()):
            shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
            raise DmlbenchError(f"non-finite loss at epoch {progress.epoch + 1}, step {progress.step + 1} "
                                f"({shown}): the last good checkpoint is kept; lower the learning rate or "
                                f"check the data")
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        sums = progress.sums
        for name, value in values.items():
            sums[name] = sums.get(name, 0.0) + value
        sums["correct"] = sums.get("correct", 0) + (outputs[1].argmax(dim=1) == labels).sum().item()
        sums["seen"] = sums.get("seen", 0) + labels.numel()
        progress.step += 1
        after_step()
    return time.perf_counter() - start


def epoch_summary(sums: dict, steps: int, lr: float) -> dict:
    """Means of the loss terms over the epoch's batches, classifier accuracy, lr, images seen."""
    terms = {k: v / max(steps, 1) for k, v in sums.items() if k not in ("correct", "seen")}
    return {"terms": terms, "accuracy": sums.get("correct", 0) / max(sums.get("seen", 0), 1), "lr": lr,
            "images": sums.get("seen", 0)}


def log_epoch(live, summary: dict) -> None:
    """One DVCLive step per epoch (no timings: logs must be byte-identical across runs)."""
    for name, value in summary["terms"].items():
        live.log_metric(f"train/{name}", value)
    live.log_metric("train/accuracy", summary["accuracy"])
    live.log_metric("train/lr", summary["lr"])
    live.next_step()


def run_key(exp: Experiment, cfg, tcfg: TrainConfig, rows: list) -> str:
    """Fingerprint of what shapes the weights: a checkpoint with another key is never resumed."""
    data = hashlib.sha256(repr(rows).encode()).hexdigest()
    return fingerprint({"experiment": dataclasses.asdict(exp), "method": dataclasses.asdict(cfg), "data": data,
                        "pretrained": tcfg.pretrained, "deterministic": tcfg.deterministic})


def train(exp: Experiment, method: Method, cfg, tcfg: TrainConfig, prepared: Path, model_path: Path,
          live_dir: Path, checkpoint_path: Path) -> list[dict]:
    """Train ``exp`` on ``prepared``/train.csv, resuming from ``checkpoint_path`` when it matches; save the model."""
    from dvclive import Live  # imported here: dvclive pulls in much of DVC

    seed_everything(exp.seed)
    if tcfg.deterministic:
        # cuBLAS needs a fixed workspace for reproducible matmuls; cuDNN autotuning picks kernels by timing.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(tcfg.deterministic)
    rows = read_manifest(prepared / "train.csv")
    classes = class_list(rows)
    dataset = ManifestDataset(prepared, rows, method.train_transform(cfg), classes)
    batches = SeededBatches(method.batch_sampler(cfg, dataset.labels, exp.seed), exp.seed)
    device = resolve_device(tcfg.device)
    loader = DataLoader(dataset, batch_sampler=batches, num_workers=tcfg.workers, worker_init_fn=seed_worker,
                        pin_memory=device.type == "cuda", persistent_workers=tcfg.workers > 0)
    model = method.build_model(cfg, exp.backbone, len(classes), tcfg.pretrained).to(device)
    optimizer, scheduler = method.build_optimizer(cfg, model)
    key = run_key(exp, cfg, tcfg, rows)
    progress = _resume(checkpoint_path, key, model, optimizer, scheduler)
    save = lambda: save_checkpoint(checkpoint_path, key, progress, model, optimizer, scheduler)  # noqa: E731
    stop = StopRequest()
    try:
        # dvcyaml=None: plots are declared in our own dvc.yaml; DVCLive must not edit it during a stage.
        with Live(dir=str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None) as live:
            for past in progress.history:  # a resumed run rewrites the finished epochs' logs first
                log_epoch(live, past)
            while progress.epoch < cfg.epochs:
                _train_epoch(model, method, cfg, tcfg, loader, batches, optimizer, scheduler, device, progress,
                             save, stop)
                log_epoch(live, progress.history[-1])
    finally:
        stop.restore()
    if cfg.epochs == 0:  # no epoch ended, so nothing was checkpointed or plotted: the outputs must exist
        save()
        (live_dir / "plots").mkdir(parents=True, exist_ok=True)
    save_model(model_path, exp, cfg, classes, model)
    return progress.history


def _train_epoch(model, method, cfg, tcfg, loader, batches, optimizer, scheduler, device, progress, save, stop):
    """Finish the current epoch, step the schedule, checkpoint; SIGTERM checkpoints and stops between steps."""
    def after_step():
        if tcfg.checkpoint_every_steps and progress.step % tcfg.checkpoint_every_steps == 0:
            save()
        if stop.requested:
            save()
            raise DmlbenchError(f"stopped by SIGTERM at epoch {progress.epoch + 1}, step {progress.step}: "
                                f"checkpoint saved; rerun the train stage (dvc repro) to resume")

    lr = optimizer.param_groups[0]["lr"]
    batches.set_position(progress.epoch, progress.step)
    seconds = train_one_epoch(model, method, cfg, loader, optimizer, device, progress, after_step)
    scheduler.step()
    summary = epoch_summary(progress.sums, progress.step, lr)
    progress.history.append(summary)
    progress.epoch, progress.step, progress.sums = progress.epoch + 1, 0, {}
    save()
    print(f"epoch {progress.epoch}/{cfg.epochs}: loss {summary['terms']['loss']:.4f} acc {summary['accuracy']:.3f} "
          f"lr {lr:.2e} {summary['images'] / max(seconds, 1e-9):.1f} img/s", flush=True)


def _resume(path: Path, key: str, model, optimizer, scheduler) -> Progress:
    saved = load_checkpoint(path, key)
    if saved is None:
        return Progress()
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    set_rng_state(saved["rng"])
    progress = Progress(**saved["progress"])
    print(f"train: resuming from {path} at epoch {progress.epoch + 1}, step {progress.step}")
    return progress
