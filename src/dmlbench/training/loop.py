"""The training loop: one readable function per epoch; checkpoint/resume, SIGTERM, NaN guard, DVCLive logs."""

import contextlib
import dataclasses
import functools
import hashlib
import math
import time

import torch
from torch.utils.data import DataLoader

from dmlbench import atomic
from dmlbench.data.image_dataset import ManifestDataset, class_list
from dmlbench.data.manifest import read_manifest
from dmlbench.data.sampler import SeededBatches
from dmlbench.errors import DmlbenchError
from dmlbench.provenance import PROVENANCE_FILE, code_digest, provenance
from dmlbench.methods.method import input_normalization, normalization_record
from dmlbench.training.checkpoint import Progress, fingerprint, load_checkpoint, load_elapsed, set_rng_state
from dmlbench.training.distributed import Distributed, cleanup, device_for, init_distributed, sum_over_ranks
from dmlbench.training.job import EpochState, StopRequest, TrainJob
from dmlbench.training.live_logs import StagedLive
from dmlbench.training.model_file import save_model
from dmlbench.methods.optimization import Optimization, learning_rates, only_trainable
from dmlbench.models.precision import loader_options, resolve_precision, select_kernels
from dmlbench.training.seeding import seed_everything, seed_worker
from dmlbench.training.selection import Selector, selection_rows
from dmlbench.training.step import TrainStep

CHECKPOINT_FORMAT = 4  # bump when the checkpoint's layout changes: an older file is then never resumed


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
        if correct is not None:
            sums["correct"] = sums.get("correct", 0) + correct
        sums["seen"] = sums.get("seen", 0) + seen
        progress.step += 1
        after_step()
    return time.perf_counter() - start


def epoch_summary(sums: dict, steps: int, rates: dict[str, float]) -> dict:
    """Means of the loss terms over the epoch's batches, classifier accuracy (None for methods without one),
    learning rates by group name, images seen."""
    terms = {k: v / max(steps, 1) for k, v in sums.items() if k not in ("correct", "seen")}
    accuracy = sums["correct"] / max(sums.get("seen", 0), 1) if "correct" in sums else None
    return {"terms": terms, "accuracy": accuracy, "lr": rates["lr"], "rates": rates, "images": sums.get("seen", 0)}


def log_epoch(live, summary: dict) -> None:
    """One DVCLive step per epoch (no timings: logs must be byte-identical across runs); None: not rank 0."""
    if live is None:
        return
    for name, value in summary["terms"].items():
        live.log_metric(f"train/{name}", value)
    if summary["accuracy"] is not None:
        live.log_metric("train/accuracy", summary["accuracy"])
    for name, value in summary["rates"].items():
        live.log_metric(f"train/{name}", value)
    for name, value in summary.get("scores", {}).items():  # val/recall@1 (best_val) or test/... (best_test)
        live.log_metric(name, value)
    live.next_step()


def run_key(job: TrainJob, rows: list, precision: str) -> str:
    """Fingerprint of what shapes the weights: a checkpoint with another key is never resumed.

    The resolved precision is part of the recipe; the device, memory format and compilation only pick kernels.
    The code is too: after a code change DVC reruns train, which must then train, not resume a finished run.
    """
    tcfg = job.train
    data = hashlib.sha256(repr(rows).encode()).hexdigest()
    return fingerprint({"format": CHECKPOINT_FORMAT, "code": code_digest(), "run": job.run.record(),
                        "method": dataclasses.asdict(job.config), "data": data, "pretrained": tcfg.pretrained,
                        "deterministic": tcfg.deterministic, "precision": precision, "select": tcfg.select,
                        "val_fraction": tcfg.val_fraction if tcfg.select == "best_val" else None,
                        "select_metric": tcfg.select_metric if tcfg.select != "last" else None})


def train(job: TrainJob) -> list[dict] | None:
    """Train ``job.run`` on ``job.prepared``/train.csv, resuming from its checkpoint when it matches; save the model.
    Returns the epochs' history in the process that writes (rank 0, or the only process), None in the others.

    Under torchrun every process trains its share of each batch (DDP); rank 0 alone writes logs and files.
    """
    where = init_distributed(job.train.device)
    try:
        return _train(job, where)
    finally:
        cleanup()


def _train(job: TrainJob, where: Distributed) -> list | None:
    start = time.perf_counter()
    run, method, cfg, tcfg, prepared = job.run, job.method, job.config, job.train, job.prepared
    exp = run.experiment
    seed_everything(exp.seed)
    select_kernels(tcfg.deterministic)
    rows, selection_splits, held_out = selection_rows(tcfg.select, read_manifest(prepared / "train.csv"),
                                                      tcfg.val_fraction, exp.seed, prepared)
    if held_out is not None and where.is_main:  # the minimum of two classes may hold out more than asked
        print(held_out.summary(), flush=True)
    classes = class_list(rows)
    norm = input_normalization(method, cfg, exp.backbone, prepared)
    dataset = ManifestDataset(prepared, rows, method.train_transform(cfg, norm), classes)
    sampler = method.batch_sampler(cfg, dataset.labels, exp.seed).for_rank(where.rank, where.world_size)
    batches = SeededBatches(sampler, exp.seed)
    device = device_for(where, tcfg.device)
    precision = resolve_precision(tcfg.precision, device, "train.precision")
    loader = DataLoader(dataset, batch_sampler=batches, worker_init_fn=seed_worker,
                        **loader_options(tcfg.workers, device))
    model = method.build_model(cfg, exp.backbone, len(classes), tcfg.pretrained, exp.seed)
    correct = functools.partial(method.correct, cfg) if method.correct else None
    step = TrainStep(model, functools.partial(method.loss, cfg), device, precision, tcfg.channels_last,
                     tcfg.compile, correct)
    optimization = method.build_optimizer(cfg, model)
    selector = Selector(tcfg.select, selection_splits, prepared, method.test_transform(cfg, norm),
                        tcfg.select_batch_size, device, precision, tcfg.channels_last,
                        held_out, tcfg.select_metric) if selection_splits else None
    if optimization.needs_scores and selector is None:
        raise DmlbenchError(f"{method.name}'s reduce-on-plateau schedule or early stopping reads a per-epoch "
                            f"selection score: set train.select: best_val (or best_test), or switch them off in "
                            f"its params section")
    state = EpochState(job, where, step, loader, batches, optimization, selector, run_key(job, rows, precision),
                       start=start)
    state.progress, state.carried = _resume(state)
    if selector is not None and selector.best is None:  # a fresh start: the untrained network is a candidate too
        untrained = selector.prefixed(selector.observe(model, 0))
        if where.is_main:  # printed as the later epochs' scores, so a reader sees where selection starts from
            print(f"epoch 0/{optimization.total_epochs(cfg.epochs)} (untrained):{_score_text(untrained)}", flush=True)
    _epochs(state)
    if not where.is_main:
        return None
    # The model file holds plain contiguous weights whatever the training layout, as the embed stage builds them.
    facts = {"precision": precision, "pretrained": tcfg.pretrained, "deterministic": tcfg.deterministic,
             "world_size": where.world_size, **optimization.schedule(cfg.epochs),
             **(selector.facts() if selector is not None
                else {"select": "last", "selected_epoch": optimization.total_epochs(cfg.epochs)}),
             "trained_epochs": state.progress.epoch, "normalization": normalization_record(norm)}
    save_model(job.model_path, run, cfg, classes, facts, model.to(memory_format=torch.contiguous_format))
    # Beside the model, not in it: the wall time differs between identical runs, the weights must not.
    atomic.write_json(job.model_path.parent / PROVENANCE_FILE,
                      provenance(device, where.world_size, precision, tcfg.deterministic, state.elapsed()))
    return state.progress.history


def _epochs(state: EpochState) -> None:
    """Every remaining epoch, with the DVCLive logs written aside and published only when training succeeds: a
    failed run (NaN, SIGTERM) leaves the previous run's logs in place. A resumed run rewrites the finished epochs'
    logs first. Ends with the selected weights in the model, checked finite."""
    job, model, progress = state.job, state.step.model, state.progress
    epochs = state.optimization.total_epochs(job.config.epochs)
    state.stop = StopRequest()
    try:
        staged = StagedLive(job.live_dir) if state.where.is_main else None
        live = staged.live if staged else None
        with staged or contextlib.nullcontext():
            for past in progress.history:
                log_epoch(live, past)
            while progress.epoch < epochs and not _stopped(state.optimization, state.selector, progress):
                _train_epoch(state, epochs)
                log_epoch(live, progress.history[-1])
            if epochs == 0:  # no epoch ended, so nothing was checkpointed: the checkpoint out must exist
                state.save()
            if state.selector is not None:
                state.selector.keep_best(model)
            check_finite_weights(model, job.run.name, job.method.name)
    finally:
        state.stop.restore()
    if staged is not None:
        staged.publish()


def check_finite_weights(model: torch.nn.Module, run_name: str, method_name: str) -> None:
    """Refuse to save a model whose weights or buffers diverged (a finite loss does not prove finite weights)."""
    bad = [name for name, tensor in model.state_dict().items()
           if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if bad:
        raise DmlbenchError(f"train: run {run_name}: {len(bad)} weight tensor(s) are not finite after training "
                            f"(first: {bad[0]}): the model diverged; lower {method_name}.lr and rerun. The previous "
                            f"model file and logs are kept")


def _train_epoch(state: EpochState, epochs: int) -> None:
    """Finish the current epoch, step the schedule, checkpoint; SIGTERM checkpoints and stops between steps."""
    step, optimization, progress, selector = state.step, state.optimization, state.progress, state.selector
    optimizer = optimization.optimizer_for(progress.epoch)
    rates = learning_rates(optimizer)
    state.batches.set_position(progress.epoch, progress.step)
    trainable = optimization.trainable_for(progress.epoch)
    with only_trainable(step.model, trainable):
        step.distribute(state.where)  # after freezing: DDP reduces exactly the parameters that get gradients
        seconds = train_one_epoch(step, state.loader, optimizer, progress, functools.partial(_after_step, state))
    summary = epoch_summary(progress.sums, progress.step, rates)
    scores = None
    if selector is not None:  # every rank scores the same images, so all agree on the best epoch
        scores = selector.observe(step.model, progress.epoch + 1)
        summary["scores"] = selector.prefixed(scores)
    optimization.end_epoch(progress.epoch, scores[selector.metric] if scores else None)
    progress.history.append(summary)
    progress.epoch, progress.step, progress.sums = progress.epoch + 1, 0, {}
    state.save()
    if not state.where.is_main:
        return
    phase = " (head only)" if trainable is not None else ""
    accuracy = f" acc {summary['accuracy']:.3f}" if summary["accuracy"] is not None else ""
    print(f"epoch {progress.epoch}/{epochs}{phase}: loss {summary['terms']['loss']:.4f}{accuracy}"
          f"{_score_text(summary.get('scores', {}))} "
          f"lr {rates['lr']:.2e} {summary['images'] / max(seconds, 1e-9):.1f} img/s", flush=True)


def _score_text(scores: dict) -> str:
    """' val/recall@1 0.7500 val/map@r 0.4312': one epoch's prefixed selection scores as the console shows them."""
    return "".join(f" {name} {value:.4f}" for name, value in scores.items())


def _after_step(state: EpochState) -> None:
    """Checkpoint every train.checkpoint_every_steps; on SIGTERM (any rank's) checkpoint and stop."""
    every, progress = state.job.train.checkpoint_every_steps, state.progress
    if every and progress.step % every == 0:
        state.save()
    if _stop_everywhere(state.stop, state.where):
        state.save()
        raise DmlbenchError(f"stopped by SIGTERM at epoch {progress.epoch + 1}, step {progress.step}: "
                            f"checkpoint saved; rerun the train stage (dvc repro) to resume")


def _stop_everywhere(stop: StopRequest, where: Distributed) -> bool:
    """Whether any process got SIGTERM: all ranks must stop at the same step, or the others would hang."""
    if where.world_size == 1:
        return stop.requested
    return sum_over_ranks({"stop": float(stop.requested)})["stop"] > 0


def _stopped(optimization: Optimization, selector: Selector | None, progress) -> bool:
    """Early stopping: the selection score has not improved for the method's patience (a resumed run checks too)."""
    best = selector.best["epoch"] if selector is not None and selector.best else None
    if optimization.stop_early(progress.epoch, best):
        print(f"train: stopping early after epoch {progress.epoch}: no better selection score since epoch {best}")
        return True
    return False


def _resume(state: EpochState) -> tuple[Progress, float]:
    """(where training stands, the seconds its earlier processes spent): a fresh start, or the checkpoint's state."""
    path = state.job.checkpoint_path
    saved = load_checkpoint(path, state.key)
    if saved is None:
        return Progress(), 0.0
    state.step.model.load_state_dict(saved["model"])
    if state.selector is not None:  # the key holds the selection, so such a checkpoint always carries its state
        state.selector.load_state_dict(saved["selection"])
    state.optimization.load_state_dict(saved["optimization"])
    if state.step.scaler is not None:  # the key holds the precision, so an fp16 checkpoint carries a scaler
        state.step.scaler.load_state_dict(saved["scaler"])
    set_rng_state(saved["rng"])
    progress = Progress(**saved["progress"])
    carried = load_elapsed(path, state.key, progress)
    print(f"train: resuming from {path} at epoch {progress.epoch + 1}, step {progress.step} "
          f"({carried:.1f} s of training before)")
    return progress, carried
