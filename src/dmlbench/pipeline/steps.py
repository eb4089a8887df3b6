"""The embed and evaluate steps of one run, given its paths: shared by the single-experiment stages (paths under
models/, embeddings/, metrics/runs/) and the grid's cell stage (paths under benchmarks/)."""

import dataclasses
from pathlib import Path

from dmlbench import atomic
from dmlbench.identity import Run, RunPaths
from dmlbench.methods.method import input_normalization
from dmlbench.models.precision import resolve_precision
from dmlbench.params.experiment import ExperimentParams
from dmlbench.reporting.run_record import run_record
from dmlbench.retrieval.embedding import embed_prepared
from dmlbench.retrieval.evaluation import evaluate_splits, load_embeddings
from dmlbench.training.distributed import SINGLE, device_for
from dmlbench.training.model_file import load_model, read_provenance


def embed_run(xp: ExperimentParams, run: Run, paths: RunPaths, prepared: Path) -> dict:
    """Embed the evaluation splits of ``prepared`` with the run's model and write ``paths.embeddings``."""
    ecfg, method, cfg = xp.embed, xp.method, xp.config
    device = device_for(SINGLE, xp.train.device)
    model, saved = load_model(paths.model, run, method, cfg)
    transform = method.test_transform(cfg, input_normalization(method, cfg, run.experiment.backbone, prepared))
    precision = resolve_precision(ecfg.precision, device, "embed.precision")
    splits = embed_prepared(model, prepared, transform, ecfg.batch_size, ecfg.workers, device, precision=precision,
                            channels_last=ecfg.channels_last)
    embedding = {**dataclasses.asdict(ecfg), "precision": precision, "device": device.type}
    atomic.save_torch(paths.embeddings, {"run": run.record(), "training": saved["training"],
                                         "provenance": read_provenance(paths.model), "embedding": embedding,
                                         "splits": splits})
    return splits


def evaluate_run(xp: ExperimentParams, run: Run, paths: RunPaths, extra: dict | None = None) -> dict:
    """Score the run's embeddings and write its metrics file (with ``extra``'s keys added, e.g. a sweep's facts);
    returns evaluate_splits' result."""
    saved = load_embeddings(paths.embeddings, run.record())
    result = evaluate_splits(saved["splits"], xp.recall_ks, xp.evaluate.chunk_size, xp.method.features)
    atomic.write_json(paths.metrics, {**run_record(xp, run, saved, result), **(extra or {})})
    return result
