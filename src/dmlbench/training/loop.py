"""The training loop: one readable function per epoch; checkpoint/resume, SIGTERM, NaN guard, DVCLive logs."""

import contextlib
import dataclasses
import functools
import hashlib
import math
import signal
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from dmlbench.training.checkpoint import (Progress, SeededBatches, fingerprint, load_checkpoint, save_checkpoint,
                                 set_rng_state)
from dmlbench.data.image_dataset import ManifestDataset, class_list
from dmlbench.data.manifest import read_manifest
from dmlbench.training.distributed import Distributed, cleanup, device_for, init_distributed, sum_over_ranks
from dmlbench.errors import DmlbenchError
from dmlbench.sections import Experiment, TrainConfig
from dmlbench.methods import Method
from dmlbench.training.model_file import save_model
from dmlbench.training.optimization import Optimization, only_trainable
from dmlbench.training.step import TrainStep
from dmlbench.training.precision import loader_options, resolve_precision, select_kernels
from dmlbench.training.seeding import seed_everything, seed_worker

CHECKPOINT_FORMAT = 2  # bump when the checkpoint's layout changes: an older file is then never resumed


class StopRequest:
    """Turns SIGTERM (preemption, `kill`) into a flag the loop checks after each step."""

    def __init__(self):
        self.requested = False
        self.previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def restore(self) -> None:
        signal.signal(signal.SIGTERM, self.previous)


def train_one_epoch(step: TrainStep, loader, optimizer, progress: Progress, after_step) -> float:
    """One pass over the epoch's remaining batches, accumulating into ``progress``; returns its seconds.

    Stops on a non-finite loss. Timings stay out of ``progress``: checkpoints must be byte-reproducible.
    """
    step.model.train()
    start = time.perf_counter()
    for images, labels in loader:
        values, correct, seen = step.backward(images, labels, optimizer)
        if not all(math.isfinite(v) for v in values.values()):  # before the step: the weights stay finite
            shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
            raise DmlbenchError(f"non-finite loss at epoch {progress.epoch + 1}, step {progress.step + 1} "
                                f"({shown}): the last good checkpoint is kept; lower the learning rate or "
                                f"check the data")
        step.step(optimizer)
        sums = progress.sums
        for name, value in values.items():
            sums[name] = sums.get(name, 0.0) + value
        sums["correct"] = sums.get("correct", 0) + correct
        sums["seen"] = sums.get("seen", 0) + seen
        progress.step += 1
        after_step()
    return time.perf_counter() - start


def epoch_summary(sums: dict, steps: int, lr: float) -> dict:
    """Means of the loss terms over the epoch's batches, classifier accuracy, lr, images seen."""
    terms = {k: v / max(steps, 1) for k, v in sums.items() if k not in ("correct", "seen")}
    return {"terms": terms, "accuracy": sums.get("correct", 0) / max(sums.get("seen", 0), 1), "lr": lr,
            "images": sums.get("seen", 0)}


def log_epoch(live, summary: dict) -> None:
    """One DVCLive step per epoch (no timings: logs must be byte-identical across runs); None: not rank 0."""
    if live is None:
        return
    for name, value in summary["terms"].items():
        live.log_metric(f"train/{name}", value)
    live.log_metric("train/accuracy", summary["accuracy"])
    live.log_metric("train/lr", summary["lr"])
    live.next_step()


def run_key(exp: Experiment, cfg, tcfg: TrainConfig, rows: list, precision: str) -> str:
    """Fingerprint of what shapes the weights: a checkpoint with another key is never resumed.

    The resolved precision is part of the recipe; the device, memory format and compilation only pick kernels.
    """
    data = hashlib.sha256(repr(rows).encode()).hexdigest()
    return fingerprint({"format": CHECKPOINT_FORMAT, "experiment": dataclasses.asdict(exp),
                        "method": dataclasses.asdict(cfg), "data": data, "pretrained": tcfg.pretrained,
                        "deterministic": tcfg.deterministic, "precision": precision})


def train(exp: Experiment, method: Method, cfg, tcfg: TrainConfig, prepared: Path, model_path: Path,
          live_dir: Path, checkpoint_path: Path) -> list[dict]:
    """Train ``exp`` on ``prepared``/train.csv, resuming from ``checkpoint_path`` when it matches; save the model.

    Under torchrun every process trains its share of each batch (DDP); rank 0 alone writes logs and files.
    """
    where = init_distributed(tcfg.device)
    try:
        return _train(exp, method, cfg, tcfg, prepared, model_path, live_dir, checkpoint_path, where)
    finally:
        cleanup()


def _train(exp, method, cfg, tcfg, prepared, model_path, live_dir, checkpoint_path, where: Distributed) -> list:
    from dvclive import Live  # imported here: dvclive pulls in much of DVC

    seed_everything(exp.seed)
    select_kernels(tcfg.deterministic)
    rows = read_manifest(prepared / "train.csv")
    classes = class_list(rows)
    dataset = ManifestDataset(prepared, rows, method.train_transform(cfg), classes)
    sampler = method.batch_sampler(cfg, dataset.labels, exp.seed).for_rank(where.rank, where.world_size)
    batches = SeededBatches(sampler, exp.seed)
    device = device_for(where, tcfg.device)
    precision = resolve_precision(tcfg.precision, device, "train.precision")
    loader = DataLoader(dataset, batch_sampler=batches, worker_init_fn=seed_worker,
                        **loader_options(tcfg.workers, device))
    model = method.build_model(cfg, exp.backbone, len(classes), tcfg.pretrained)
    step = TrainStep(model, functools.partial(method.loss, cfg), device, precision, tcfg.channels_last,
                     tcfg.compile)
    optimization = method.build_optimizer(cfg, model)
    epochs = optimization.warmup_epochs + cfg.epochs
    key = run_key(exp, cfg, tcfg, rows, precision)
    progress = _resume(checkpoint_path, key, model, optimization, step.scaler)
    save = functools.partial(_save_on_main, where, checkpoint_path, key, progress, model, optimization, step.scaler)
    stop = StopRequest()
    try:
        # dvcyaml=None: plots are declared in our own dvc.yaml; DVCLive must not edit it during a stage.
        live = Live(dir=str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None) if where.is_main else None
        with live or contextlib.nullcontext():
            for past in progress.history:  # a resumed run rewrites the finished epochs' logs first
                log_epoch(live, past)
            while progress.epoch < epochs:
                _train_epoch(step, tcfg, loader, batches, optimization, progress, save, stop, epochs, where)
                log_epoch(live, progress.history[-1])
    finally:
        stop.restore()
    if epochs == 0:  # no epoch ended, so nothing was checkpointed or plotted: the outputs must exist
        save()
        (live_dir / "plots").mkdir(parents=True, exist_ok=True)
    if where.is_main:
        # The model file holds plain contiguous weights whatever the training layout, as the embed stage builds them.
        save_model(model_path, exp, cfg, classes, model.to(memory_format=torch.contiguous_format))
    return progress.history


def _save_on_main(where: Distributed, *args) -> None:
    """Rank 0 writes the checkpoint; the others wait, so no rank runs ahead of a checkpoint it may resume from."""
    if where.is_main:
        save_checkpoint(*args)
    if where.world_size > 1:
        torch.distributed.barrier()


def _train_epoch(step: TrainStep, tcfg, loader, batches, optimization: Optimization, progress, save, stop,
                 epochs: int, where: Distributed):
    """Finish the current epoch, step the schedule, checkpoint; SIGTERM checkpoints and stops between steps."""
    def after_step():
        if tcfg.checkpoint_every_steps and progress.step % tcfg.checkpoint_every_steps == 0:
            save()
        if _stop_everywhere(stop, where):
            save()
            raise DmlbenchError(f"stopped by SIGTERM at epoch {progress.epoch + 1}, step {progress.step}: "
                                f"checkpoint saved; rerun the train stage (dvc repro) to resume")

    optimizer = optimization.optimizer_for(progress.epoch)
    lr = optimizer.param_groups[0]["lr"]
    batches.set_position(progress.epoch, progress.step)
    warming = optimization.warming_up(progress.epoch)
    with only_trainable(step.model, optimizer) if warming else contextlib.nullcontext():
        step.distribute(where)  # after freezing: DDP reduces exactly the parameters that get gradients
        seconds = train_one_epoch(step, loader, optimizer, progress, after_step)
    optimization.end_epoch(progress.epoch)
    summary = epoch_summary(progress.sums, progress.step, lr)
    progress.history.append(summary)
    progress.epoch, progress.step, progress.sums = progress.epoch + 1, 0, {}
    save()
    if not where.is_main:
        return
    phase = " (warm-up)" if warming else ""
    print(f"epoch {progress.epoch}/{epochs}{phase}: loss {summary['terms']['loss']:.4f} acc {summary['accuracy']:.3f} "
          f"lr {lr:.2e} {summary['images'] / max(seconds, 1e-9):.1f} img/s", flush=True)


def _stop_everywhere(stop: StopRequest, where: Distributed) -> bool:
    """Whether any process got SIGTERM: all ranks must stop at the same step, or the others would hang."""
    if where.world_size == 1:
        return stop.requested
    return sum_over_ranks({"stop": float(stop.requested)})["stop"] > 0


def _resume(path: Path, key: str, model, optimization: Optimization, scaler) -> Progress:
    saved = load_checkpoint(path, key)
    if saved is None:
        return Progress()
    model.load_state_dict(saved["model"])
    optimization.load_state_dict(saved["optimization"])
    if scaler is not None:  # the key holds the precision, so an fp16 checkpoint always carries a scaler
        scaler.load_state_dict(saved["scaler"])
    set_rng_state(saved["rng"])
    progress = Progress(**saved["progress"])
    print(f"train: resuming from {path} at epoch {progress.epoch + 1}, step {progress.step}")
    return progress
