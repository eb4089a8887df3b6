"""`dmlbench export`: a run's embedding network as ONNX under exports/<run>/, checked against PyTorch on the run's
evaluation images before it replaces anything (cosine >= MIN_COSINE for every image, the same Recall@1)."""

import json
import shutil
import time
from pathlib import Path

import torch

from dmlbench import atomic
from dmlbench.cli.runs import EXPORTS, Workspace, load_torch_model, run_transform
from dmlbench.data.decode import one_line
from dmlbench.data.image_dataset import ManifestDataset, class_list
from dmlbench.data.manifest import eval_splits, read_manifest
from dmlbench.errors import DmlbenchError
from dmlbench.cli.export_onnx import OnnxEmbedder, compare, export_onnx
from dmlbench.retrieval.embedding import embed_images
from dmlbench.retrieval.metrics import retrieval_metrics

MIN_COSINE = 0.9999
BATCH = 64
FORMAT = 1  # of model.json


def export_run(ws: Workspace, name: str, external_limit: int | None = None) -> dict:
    """Export run ``name``, check it, then move it into exports/<name>/; returns model.json's record."""
    start = time.perf_counter()
    ws.check_run(name, onnx=False)
    model, saved = load_torch_model(ws, name)
    method, cfg, transform = run_transform(saved, ws.model(name))
    side = method.image_sizes(cfg)["test"]
    staging = _staging(ws.root / EXPORTS, name)
    try:
        limit = {} if external_limit is None else {"external_limit": external_limit}
        external = export_onnx(model, side, staging / "model.onnx", **limit)
        check = check_export(model, OnnxEmbedder(staging / "model.onnx"), ws.prepared(saved["run"]), transform)
        # "training" holds the input normalisation: a query on the ONNX network rebuilds the transform from it.
        record = {"format": FORMAT, "run": saved["run"], "config": saved["config"], "training": saved["training"],
                  "side": side,
                  "external_data": external, "check": check, "seconds": round(time.perf_counter() - start, 1)}
        (staging / "model.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        atomic.replace_dir(staging, ws.onnx(name).parent)
    except OSError as exc:  # the disk filled, or the folder changed under us
        raise _unwritable(ws.root / EXPORTS, exc) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return record


def _unwritable(exports: Path, exc: OSError) -> DmlbenchError:
    return DmlbenchError(f"cannot write the export under {exports} ({one_line(exc)}): make {exports} a folder you "
                         f"can write to (with free space), then run dmlbench export again; no export was replaced")


def _staging(exports: Path, name: str) -> Path:
    """A fresh hidden folder in exports/ to build the export in (the rename into place stays on one file system),
    with mkdir's mode (0777 less the umask), not mkdtemp's 0700: a colleague or a group's cache can read it."""
    try:
        exports.mkdir(parents=True, exist_ok=True)
        return atomic.temp_dir(exports, f".{name}.")
    except OSError as exc:  # read-only, not a folder, full
        raise _unwritable(exports, exc) from None


def check_export(model: torch.nn.Module, onnx: OnnxEmbedder, prepared: Path, transform) -> dict:
    """Embed the run's evaluation images with both networks; refuse the export unless every image's two
    embeddings have cosine >= MIN_COSINE and Recall@1 is the same (PyTorch in float32 on the CPU)."""
    embeddings = {}
    for split in eval_splits(prepared):
        rows = read_manifest(prepared / f"{split}.csv")
        dataset = ManifestDataset(prepared, rows, transform, class_list(rows))
        reference = embed_images(model, dataset, BATCH, 0, torch.device("cpu"), "fp32", split=split)
        exported = onnx.embed(dataset, BATCH)
        labels = torch.tensor([label for _, label in rows])
        embeddings[split] = (reference, exported, labels)
    lowest = min(compare(reference, exported) for reference, exported, _ in embeddings.values())
    recall = {which: _recall_at_1(embeddings, i) for i, which in enumerate(("torch", "onnx"))}
    images = sum(len(labels) for _, _, labels in embeddings.values())
    if lowest < MIN_COSINE or recall["torch"] != recall["onnx"]:
        raise DmlbenchError(f"the ONNX network disagrees with PyTorch on the {images} evaluation images (lowest "
                            f"cosine {lowest:.6f}, need >= {MIN_COSINE}; Recall@1 {recall['onnx']:.4f} vs "
                            f"{recall['torch']:.4f}): nothing was written; report it with the run's name")
    return {"images": images, "min_cosine": round(lowest, 7), "recall@1": recall["onnx"]}


def _recall_at_1(embeddings: dict, which: int) -> float:
    """Recall@1 of one network's embeddings: test against itself, or query against gallery (as evaluate)."""
    if "test" in embeddings:
        test = embeddings["test"]
        return retrieval_metrics(test[which], test[2], ks=(1,))["recall@1"]
    query, gallery = embeddings["query"], embeddings["gallery"]
    return retrieval_metrics(query[which], query[2], gallery[which], gallery[2], ks=(1,))["recall@1"]


