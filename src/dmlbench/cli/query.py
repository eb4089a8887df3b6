"""`dmlbench query`: embed images with a run's model (PyTorch or its ONNX export) and rank its gallery exactly,
with the ranking code of the pictures stage (the same convention as evaluate); print the top K and draw them."""

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from PIL import Image, UnidentifiedImageError
from tabulate import tabulate

from dmlbench.data.image_dataset import ManifestDataset, class_list
from dmlbench.data.manifest import read_manifest
from dmlbench.errors import DmlbenchError
from dmlbench.cli.runs import (Workspace, evaluation_gallery, load_onnx_record, load_torch_model, run_transform)
from dmlbench.reporting.pictures import draw_rows, prepared_image, ranking_row
from dmlbench.reporting.ranking import top_k
from dmlbench.retrieval.embedding import check_embeddings, embed_images

BATCH = 64  # images per forward pass


@dataclass(frozen=True)
class OpenRun:
    """A run ready to embed images: its record, test transform, and an embedding function over datasets."""

    name: str
    run: dict
    transform: Callable
    embed: Callable  # dataset of (image tensor, label) -> (N, D) L2-normalised embeddings


def open_run(ws: Workspace, name: str, onnx: bool = False) -> OpenRun:
    """Load the run's model: the PyTorch one, or with ``onnx`` its exported ONNX network (no torch model)."""
    ws.check_run(name, onnx)
    if onnx:
        from dmlbench.export_onnx import OnnxEmbedder

        record = load_onnx_record(ws, name)
        session = OnnxEmbedder(ws.onnx(name))

        def embed(dataset):
            embeddings = session.embed(dataset, BATCH)
            check_embeddings(embeddings, "query")
            return embeddings
    else:
        model, record = load_torch_model(ws, name)

        def embed(dataset):
            return embed_images(model, dataset, BATCH, 0, torch.device("cpu"), "fp32", split="query")
    _, _, transform = run_transform(record, ws.onnx_record(name) if onnx else ws.model(name))
    return OpenRun(name, record["run"], transform, embed)


def load_gallery(ws: Workspace, opened: OpenRun, which: str) -> dict:
    """{"embeddings", "labels", "paths"}: the evaluation gallery the embed stage wrote ("test"), or the prepared
    training images embedded now with the run's model ("train": nothing stores their embeddings)."""
    if which == "test":
        gallery = evaluation_gallery(ws, opened.name, opened.run)
    else:
        prepared = ws.prepared(opened.run)
        rows = read_manifest(prepared / "train.csv")
        for path, _ in rows:
            prepared_image(prepared, path)  # the manifest is untrusted too
        dataset = ManifestDataset(prepared, rows, opened.transform, class_list(rows))
        gallery = {"embeddings": opened.embed(dataset) if rows else torch.zeros(0, 1),
                   "labels": torch.tensor([label for _, label in rows], dtype=torch.long),
                   "paths": [path for path, _ in rows]}
    if not len(gallery["labels"]):
        raise DmlbenchError(f"the {which} gallery of run {opened.name} is empty: rerun dvc repro prepare, or pick "
                            f"the other gallery (--gallery {'train' if which == 'test' else 'test'})")
    return gallery


def read_image(path: Path, transform: Callable) -> torch.Tensor:
    """The test-transformed tensor of a user's image file, or one line saying why it is not an image."""
    if not path.is_file():
        raise DmlbenchError(f"image {path} not found: pass the path of a JPEG or PNG file")
    try:
        with Image.open(path) as image:
            return transform(image.convert("RGB"))
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError, SyntaxError) as exc:
        raise DmlbenchError(f"{path} is not an image PIL can read ({type(exc).__name__}): pass a JPEG or PNG "
                            f"file") from None


@dataclass(frozen=True)
class Answer:
    """Each query image's label (None when it is not a gallery image) and its top K (similarities, indices)."""

    labels: list[int | None]
    similarities: torch.Tensor
    indices: torch.Tensor


def search(ws: Workspace, opened: OpenRun, gallery: dict, images: list[Path], k: int) -> Answer:
    """Embed ``images`` and rank the gallery; an image that is itself a gallery item is removed from its own list
    by index, as evaluate removes each query, and lends its label to the picture's frames."""
    size = len(gallery["labels"])
    if k < 1 or k > size:
        raise DmlbenchError(f"--k {k} asked, but the gallery of run {opened.name} holds {size} images: pass "
                            f"--k between 1 and {size}")
    tensors = [read_image(path, opened.transform) for path in images]
    query = opened.embed([(t, 0) for t in tensors])
    own = gallery_positions(ws.prepared(opened.run), gallery["paths"], images)
    similarities, indices = top_k(query, gallery["embeddings"], k, torch.tensor(own))
    labels = [int(gallery["labels"][i]) if i >= 0 else None for i in own]
    return Answer(labels, similarities, indices)


def gallery_positions(prepared: Path, paths: list[str], images: list[Path]) -> list[int]:
    """Per image, its index in the gallery when it is one of the prepared gallery files, else -1."""
    index = {path: i for i, path in enumerate(paths)}
    root = prepared.resolve()
    found = []
    for image in images:
        resolved = image.resolve()
        inside = resolved.is_relative_to(root)
        found.append(index.get(resolved.relative_to(root).as_posix(), -1) if inside else -1)
    return found


def report(opened: OpenRun, gallery: dict, images: list[Path], answer: Answer, out: Path, prepared: Path) -> None:
    """Print each image's top K as a table and draw them all as one picture at ``out``."""
    rows = []
    for q, image in enumerate(images):
        hits = answer.indices[q].tolist()
        sims = answer.similarities[q].tolist()
        labels = [int(gallery["labels"][j]) for j in hits]
        paths = [gallery["paths"][j] for j in hits]
        known = "unknown class" if answer.labels[q] is None else f"class {answer.labels[q]}"
        print(f"query {image} ({known}), run {opened.name}:")
        print(tabulate([(r + 1, p, lab, f"{s:.4f}") for r, (p, lab, s) in enumerate(zip(paths, labels, sims))],
                       headers=["rank", "path", "label", "similarity"]))
        caption = "query" if answer.labels[q] is None else f"query, class {answer.labels[q]}"
        rows.append(ranking_row(image, answer.labels[q], caption, [prepared_image(prepared, p) for p in paths],
                                labels, sims))
    draw_rows(rows, f"{opened.name}: top {answer.indices.shape[1]}", out)
    print(f"picture: {out}")
