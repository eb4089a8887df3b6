"""Exact, chunked k-NN retrieval metrics: cosine over L2-normalised embeddings, or Hamming over their signs.

Ranking convention, used by every metric: a stable sort by descending similarity, ties broken by
ascending gallery index (what numpy.argsort(-sim, kind="stable") gives). In self-retrieval mode
(no gallery) the query itself is removed by index, never by value, so a duplicate image stays.
Memory is O(chunk_size x gallery size); the full Q x G matrix never exists.

Inputs that cannot give meaningful numbers are refused, never scored: non-finite embeddings (a diverged
model; NaN similarities would otherwise rank as perfect matches) and a gallery (the test set in
self-retrieval) holding fewer than 2 classes.
"""

import math
from typing import Sequence

import torch

from dmlbench.errors import DmlbenchError
from dmlbench.retrieval.per_query import PerQuery
from dmlbench.retrieval.ranks import cross_ranks, nonfinite_rows, self_ranks

SIMILARITIES = ("cosine", "hamming")
TILE_CAP = 4096


def retrieval_metrics(query: torch.Tensor, query_labels: torch.Tensor,
                      gallery: torch.Tensor | None = None, gallery_labels: torch.Tensor | None = None,
                      ks: Sequence[int] = (1, 2, 4, 8), chunk_size: int = 1024,
                      similarity: str = "cosine") -> dict[str, float]:
    """Recall@K for each K, MAP@R and R-Precision, as fractions in [0, 1]; no gallery = self-retrieval.

    similarity: "cosine" (dot product of the given, already normalised embeddings) or "hamming" (codes
    sign(x), 0 counting as +1, ranked by ascending Hamming distance = descending dot product of the +-1 codes).
    Queries with no relevant item (see queries_without_relevant) count as misses for Recall@K and are left
    out of MAP@R and R-Precision (which are 0.0 if no query has a relevant item). chunk_size bounds the
    working memory to about chunk_size x gallery similarities. Non-finite embeddings and a gallery of fewer
    than 2 classes are refused with a DmlbenchError.
    """
    return per_query_values(query, query_labels, gallery, gallery_labels, ks, chunk_size, similarity).metrics()


def per_query_values(query: torch.Tensor, query_labels: torch.Tensor,
                     gallery: torch.Tensor | None = None, gallery_labels: torch.Tensor | None = None,
                     ks: Sequence[int] = (1, 2, 4, 8), chunk_size: int = 1024,
                     similarity: str = "cosine") -> PerQuery:
    """What each query scored (retrieval_metrics' inputs, checks and ranking), in query order: the metrics are
    its .metrics(), and intervals.py resamples it."""
    self_mode = gallery is None
    if self_mode:
        gallery, gallery_labels = query, query_labels
    _validate(query, query_labels, gallery, gallery_labels, ks, chunk_size, self_mode, similarity)
    values = PerQuery.empty(ks, query_labels)
    for rows, ranks in _ranks(_features(query, similarity), query_labels.long(),
                              None if self_mode else _features(gallery, similarity), gallery_labels.long(),
                              max(ks), chunk_size):
        values.fill(rows, ranks, chunk_size)
    return values


def queries_without_relevant(query_labels: torch.Tensor, gallery_labels: torch.Tensor | None = None) -> int:
    """How many queries have no relevant item to find: a class with one image in self-retrieval (no gallery),
    or a query label the gallery lacks. It depends on the labels alone, so it is the same for every feature."""
    query_labels = query_labels.long()
    if gallery_labels is None:
        _, inverse, counts = query_labels.unique(return_inverse=True, return_counts=True)
        return int((counts[inverse] == 1).sum())
    return int((~torch.isin(query_labels, gallery_labels.long())).sum())


def _ranks(query, labels, gallery, gallery_labels, max_k: int, chunk_size: int):
    """(query index of each row, Ranks) pieces: one by symmetric blocks (self-retrieval, rows regrouped by
    class), else one per chunk of queries."""
    if gallery is None:
        found = self_ranks(query, labels, _tile(chunk_size, len(query)), max_k, max_class=chunk_size + 1)
        if found is not None:
            ranks, order = found
            return [(order, ranks)]
    self_mode = gallery is None
    chunks = cross_ranks(query, labels, query if self_mode else gallery, gallery_labels, chunk_size, max_k, self_mode)
    return ((torch.arange(start, start + len(st.r)), st) for start, st in zip(range(0, len(query), chunk_size), chunks))


def _tile(chunk_size: int, n: int) -> int:
    """Side of the square self-retrieval blocks: within the chunk_size x n memory budget, capped near where
    larger blocks stop speeding up the matrix product."""
    return min(max(chunk_size, math.isqrt(chunk_size * n)), TILE_CAP)


def _features(x: torch.Tensor, similarity: str) -> torch.Tensor:
    """float32 vectors whose dot products are the similarities; those of +-1 codes are exact integers."""
    if similarity == "hamming":
        return (x >= 0).float() * 2 - 1
    return x.float()


def _validate(query, query_labels, gallery, gallery_labels, ks, chunk_size, self_mode: bool, similarity) -> None:
    """One clear DmlbenchError for inputs that cannot give meaningful metrics."""
    if similarity not in SIMILARITIES:
        raise DmlbenchError(f"unknown similarity {similarity!r} (choices: {', '.join(SIMILARITIES)})")
    if gallery_labels is None:
        raise DmlbenchError("gallery embeddings were given without gallery labels: pass both or neither")
    if query.ndim != 2 or gallery.ndim != 2 or query.shape[1] != gallery.shape[1]:
        raise DmlbenchError(f"query embeddings {tuple(query.shape)} and gallery embeddings "
                            f"{tuple(gallery.shape)} must be 2-D with the same dimension")
    for emb, labels, name in ((query, query_labels, "query"), (gallery, gallery_labels, "gallery")):
        if labels.ndim != 1 or len(labels) != len(emb):
            raise DmlbenchError(f"{name} labels of shape {tuple(labels.shape)} for {len(emb)} {name} "
                                f"embeddings: need one label per embedding; rerun the embed stage")
    if len(query) == 0:
        raise DmlbenchError("no query embeddings: the test split is empty; check the dataset preparation")
    _check_finite(query, "test" if self_mode else "query")
    if not self_mode:
        _check_finite(gallery, "gallery")
    _check_classes(gallery_labels, self_mode)
    if not ks or min(ks) < 1 or chunk_size < 1:
        raise DmlbenchError(f"ks={tuple(ks)} and chunk_size={chunk_size} must be positive (ks non-empty)")
    candidates = len(gallery) - (1 if self_mode else 0)
    if max(ks) > candidates:
        besides = " besides the query itself" if self_mode else ""
        raise DmlbenchError(f"Recall@{max(ks)} asked, but the gallery has {len(gallery)} images, so each "
                            f"query searches only {candidates}{besides}: lower the K list or use a "
                            f"larger test set")


def _check_finite(embeddings: torch.Tensor, name: str) -> None:
    """Refuse NaN or inf embeddings: they come from a model that diverged, and would otherwise score as
    perfect (a NaN similarity compares false with everything, so nothing ever ranks above it)."""
    bad = nonfinite_rows(embeddings)
    if bad:
        raise DmlbenchError(f"{bad} of {len(embeddings)} {name} embeddings are not finite (NaN or inf): the model "
                            f"diverged in training; lower the learning rate and rerun dvc repro train")


def _check_classes(gallery_labels: torch.Tensor, self_mode: bool) -> None:
    """Refuse a gallery of fewer than 2 classes: every item would then be relevant to a query or none would,
    so the ranking, whatever the model, decides nothing."""
    found = len(gallery_labels.unique())
    if found < 2:
        where = "test split" if self_mode else "gallery"
        raise DmlbenchError(f"the {where} has too few classes: found {found} class(es), need >= 2 for retrieval "
                            f"to mean anything; put more classes in the {where} (split.txt for a folder "
                            f"dataset) and rerun dvc repro prepare")
