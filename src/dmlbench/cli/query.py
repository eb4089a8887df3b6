"""`dmlbench query`: embed images with a run's model (PyTorch or its ONNX export) and rank its gallery exactly,
with the ranking code of the pictures stage (the same convention as evaluate); print the top K and draw them."""

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from tabulate import tabulate

from dmlbench.data.decode import MAX_ASPECT, MIN_SIDE, UnreadableImage, decode_image
from dmlbench.data.image_dataset import ManifestDataset, class_list
from dmlbench.data.manifest import read_manifest
from dmlbench.errors import DmlbenchError
from dmlbench.cli.runs import (Workspace, evaluation_gallery, load_onnx_record, load_torch_model, run_transform)
from dmlbench.reporting.pictures import PICTURE_FORMATS, draw_rows, prepared_image, ranking_row
from dmlbench.retrieval.ranking import top_k
from dmlbench.retrieval.embedding import check_embeddings, embed_images

BATCH = 64  # images per forward pass
# The pipeline's outputs, relative to the workspace (identity.py, dvc.yaml, benchmarks/dvc.yaml, exports): --out may
# not write there, even a name that does not exist yet (a folder DVC owns is replaced whole by a checkout).
ARTIFACTS = ("models", "checkpoints", "embeddings", "metrics", "dvclive", "plots", "data", "exports",
             "benchmarks/prepared", "benchmarks/runs", "benchmarks/metrics", "benchmarks/overview.png")


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
        from dmlbench.cli.export_onnx import OnnxEmbedder

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


def read_image(path: Path, transform: Callable, check_shape: bool = True) -> torch.Tensor:
    """The test-transformed tensor of a user's image file, decoded as prepare decodes (upright, 8-bit, of a usable
    shape unless ``check_shape`` is false), or one line saying why it cannot be used."""
    try:
        return transform(decode_image(path, check_shape=check_shape))
    except UnreadableImage as exc:
        if exc.cause == "directory":
            fix = f"pass the image files in it (e.g. {path}/*.jpg)"
        elif exc.cause == "shape":
            fix = f"pass an image at least {MIN_SIDE} px a side and at most {MAX_ASPECT:g}:1"
        else:  # missing, undecodable (its own fix when it has one: too large)
            fix = exc.fix or "pass the path of a JPEG or PNG file"
        raise DmlbenchError(f"{exc.reason}: {fix}") from None


def check_out(out: Path, root: Path) -> None:
    """Refuse an ``--out`` that is a folder, not a .png/.jpg name, a file git tracks, or inside ARTIFACTS of the
    workspace ``root``; a link counts where it points too."""
    if out.is_dir():
        raise DmlbenchError(f"--out {out} is a directory: name the picture file, e.g. --out {out / 'query.png'}")
    if out.suffix.lower() not in PICTURE_FORMATS:
        raise DmlbenchError(f"--out {out}: the picture is written as .png or .jpg, not as "
                            f"{out.suffix or 'a name without extension'}: pass e.g. --out query.png")
    places = {out.parent.resolve() / out.name, out.resolve()}
    folders = {folder for name in ARTIFACTS for folder in ((root / name).resolve(), root.resolve() / name)}
    for place in places:
        inside = [folder for folder in folders if place == folder or folder in place.parents]
        if inside:
            raise DmlbenchError(f"--out {out} lies in {inside[0]}, where the pipeline keeps its outputs: pass a "
                                f"path outside it, e.g. --out query.png")
        if tracked(place):
            raise DmlbenchError(f"--out {out} would overwrite {place}, a file git tracks: pass a new name, e.g. "
                                f"--out query.png")


def tracked(path: Path) -> bool:
    """Whether git tracks ``path`` (False outside a repository, or without git: nothing to protect there)."""
    folder = path.parent
    while not folder.is_dir():  # git -C needs an existing folder; a missing one holds nothing tracked
        folder = folder.parent
    try:
        # Literal: a name holding * or ? is a file name here, not a pattern matching other tracked files.
        found = subprocess.run(["git", "--literal-pathspecs", "-C", str(folder), "ls-files", "-z", "--", str(path)],
                               capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return found.returncode == 0 and bool(found.stdout)


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
    prepared = ws.prepared(opened.run).resolve()
    # A prepared image may be a small crop of a checked source (a box 11 px high): only other files are checked.
    tensors = [read_image(path, opened.transform, not path.resolve().is_relative_to(prepared)) for path in images]
    query = opened.embed([(t, 0) for t in tensors])
    own = gallery_positions(prepared, gallery["paths"], images)
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
    try:
        draw_rows(rows, f"{opened.name}: top {answer.indices.shape[1]}", out)
    except OSError as exc:  # a read-only folder, a file where a folder should be, a full disk
        raise DmlbenchError(f"cannot write --out {out} ({type(exc).__name__}: {exc.strerror or exc}): pass a path "
                            f"in a folder you can write to") from None
    print(f"picture: {out}")
