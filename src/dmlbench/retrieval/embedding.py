"""Embedding extraction: L2-normalised float32 vectors of every evaluation image."""

from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from dmlbench.data.image_dataset import ManifestDataset, class_list
from dmlbench.data.manifest import eval_splits, read_manifest
from dmlbench.errors import DmlbenchError
from dmlbench.retrieval.ranks import nonfinite_rows
from dmlbench.models.precision import autocast, memory_format, resolve_precision, to_device

@torch.no_grad()
def embed_images(model, dataset, batch_size: int, workers: int, device: torch.device, precision: str = "fp32",
                 channels_last: bool = False, split: str = "evaluation") -> torch.Tensor:
    """(N, D) float32 L2-normalised embeddings, in dataset order; the model's first output is the embedding.

    ``precision`` is a resolved one (fp32, bf16, fp16): the autocast dtype of the forward pass. Non-finite
    embeddings are refused (see check_embeddings); ``split`` names the images in that error.
    """
    model.eval().to(device, memory_format=memory_format(channels_last))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        pin_memory=device.type == "cuda")
    chunks = []
    for images, _ in loader:
        with autocast(device, precision):
            embedding = model(to_device(images, device, channels_last))[0]
        chunks.append(embedding.float().cpu())
    embeddings = F.normalize(torch.cat(chunks), dim=1)
    check_embeddings(embeddings, split)
    return embeddings


def check_embeddings(embeddings: torch.Tensor, split: str) -> None:
    """Refuse NaN or inf embeddings, before the embed stage writes anything: they come from a model whose
    training diverged, and would score as perfect matches in evaluate. (A NaN or inf coordinate leaves its
    whole row NaN after L2-normalisation, so each such row counts once.)"""
    bad = nonfinite_rows(embeddings)
    if bad:
        raise DmlbenchError(f"the model gave non-finite (NaN or inf) embeddings for {bad} of {len(embeddings)} "
                            f"{split} images: its training diverged; lower the learning rate and rerun "
                            f"dvc repro train")


def embed_prepared(model, prepared: Path, transform, batch_size: int, workers: int, device: torch.device,
                   precision: str = "fp32", channels_last: bool = False) -> dict[str, dict]:
    """Embed each evaluation split: {split: {"embeddings", "labels", "paths"}} with original labels.

    ``precision`` is as in params (auto, fp32, bf16, fp16); the defaults reproduce plain fp32 extraction.
    """
    precision = resolve_precision(precision, device, "embed.precision")
    out = {}
    for split in eval_splits(prepared):
        rows = read_manifest(prepared / f"{split}.csv")
        dataset = ManifestDataset(prepared, rows, transform, class_list(rows))
        out[split] = {
            "embeddings": embed_images(model, dataset, batch_size, workers, device, precision, channels_last,
                                       split=split),
            "labels": torch.tensor([label for _, label in rows]),
            "paths": [path for path, _ in rows],
        }
    return out
