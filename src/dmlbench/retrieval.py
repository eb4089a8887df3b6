"""Exact, chunked k-NN retrieval metrics over L2-normalised embeddings (cosine = dot product).

Ranking convention, used by every metric: a stable sort by descending similarity, ties broken by
ascending gallery index (what numpy.argsort(-sim, kind="stable") gives). In self-retrieval mode
(no gallery) the query itself is removed by index, never by value, so a duplicate image stays.
Memory per chunk of queries is O(chunk_size x gallery size); the full Q x G matrix never exists.
"""

from typing import Sequence

import torch

from dmlbench.errors import DmlbenchError


def retrieval_metrics(query: torch.Tensor, query_labels: torch.Tensor,
                      gallery: torch.Tensor | None = None, gallery_labels: torch.Tensor | None = None,
                      ks: Sequence[int] = (1, 2, 4, 8), chunk_size: int = 1024) -> dict[str, float]:
    """Recall@K for each K, MAP@R and R-Precision, as fractions in [0, 1]; no gallery = self-retrieval.

    Queries with no relevant item count as misses for Recall@K and are left out of MAP@R and
    R-Precision (which are 0.0 if no query has a relevant item).
    """
    self_mode = gallery is None
    if self_mode:
        gallery, gallery_labels = query, query_labels
    _validate(query, query_labels, gallery, gallery_labels, ks, chunk_size, self_mode)
    hits = [0] * len(ks)
    ap_sum = rp_sum = 0.0
    counted = 0
    for start in range(0, len(query), chunk_size):
        q, ql = query[start:start + chunk_size], query_labels[start:start + chunk_size]
        sim, rel = _similarities(q, ql, gallery, gallery_labels, start if self_mode else None)
        rank = _first_relevant_rank(sim, rel).cpu()
        hits = [h + int((rank < k).sum()) for h, k in zip(hits, ks)]
        ap, rp = _ap_and_rp_at_r(sim, rel)
        ap_sum, rp_sum, counted = ap_sum + ap.sum().item(), rp_sum + rp.sum().item(), counted + len(ap)
    metrics = {f"recall@{k}": h / len(query) for k, h in zip(ks, hits)}
    metrics["map@r"] = ap_sum / counted if counted else 0.0
    metrics["r_precision"] = rp_sum / counted if counted else 0.0
    return metrics


def _validate(query, query_labels, gallery, gallery_labels, ks, chunk_size, self_mode: bool) -> None:
    """One clear DmlbenchError for inputs that cannot give meaningful metrics."""
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
    if not ks or min(ks) < 1 or chunk_size < 1:
        raise DmlbenchError(f"ks={tuple(ks)} and chunk_size={chunk_size} must be positive (ks non-empty)")
    candidates = len(gallery) - (1 if self_mode else 0)
    if max(ks) > candidates:
        besides = " besides the query itself" if self_mode else ""
        raise DmlbenchError(f"Recall@{max(ks)} asked, but the gallery has {len(gallery)} images, so each "
                            f"query searches only {candidates}{besides}: lower the K list or use a "
                            f"larger test set")


def _similarities(q, ql, gallery, gallery_labels, self_offset: int | None):
    """(c, G) cosine similarities and relevance; in self mode the own column is -inf and irrelevant."""
    sim = q.float() @ gallery.float().T
    rel = ql[:, None] == gallery_labels[None, :]
    if self_offset is not None:
        # -inf ranks the query last and never ties a real similarity, so no count below includes it.
        rows = torch.arange(len(q), device=sim.device)
        sim[rows, rows + self_offset] = float("-inf")
        rel[rows, rows + self_offset] = False
    return sim, rel


def _first_relevant_rank(sim: torch.Tensor, rel: torch.Tensor) -> torch.Tensor:
    """0-based stable rank of each query's first relevant item (int64 max when it has none), by counting."""
    best = torch.where(rel, sim, float("-inf")).amax(dim=1, keepdim=True)  # (c, 1)
    # argmax returns the first maximal position, i.e. the lowest index among the best relevant items.
    first = (rel & (sim == best)).to(torch.uint8).argmax(dim=1, keepdim=True)
    index = torch.arange(sim.shape[1], device=sim.device)[None, :]
    rank = ((sim > best) | ((sim == best) & (index < first))).sum(dim=1)
    return torch.where(rel.any(dim=1), rank, torch.full_like(rank, torch.iinfo(rank.dtype).max))


def _stable_top(sim: torch.Tensor, k: int) -> torch.Tensor:
    """(c, k) gallery indices of the first k items of each row in the stable (-sim, index) order."""
    threshold = sim.topk(k, dim=1).values[:, -1:]  # k-th largest value; topk's choice among ties is arbitrary
    above = sim > threshold  # every item strictly above the k-th value is in the top k
    tied = sim == threshold
    # Fill the remaining slots with the tied items of lowest index.
    slots = k - above.sum(dim=1, keepdim=True, dtype=torch.int32)
    wanted = tied & (tied.cumsum(dim=1, dtype=torch.int32) <= slots)
    # nonzero walks row-major, so each row's k selected indices come out ascending.
    index = (above | wanted).nonzero()[:, 1].view(len(sim), k)
    # A stable sort by value over index-ascending entries yields the (-sim, index) order.
    order = sim.gather(1, index).sort(dim=1, descending=True, stable=True).indices
    return index.gather(1, order)


def _ap_and_rp_at_r(sim: torch.Tensor, rel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Float64 CPU AP@R and R-Precision of the queries with R >= 1 relevant items (others dropped)."""
    r = rel.sum(dim=1).cpu()
    k = max(int(r.max()), 1)
    # The stable top-R is the length-R prefix of the stable top-R_max, so one topk serves the chunk.
    ranked_rel = rel.gather(1, _stable_top(sim, k)).cpu()
    position = torch.arange(1, k + 1)[None, :]
    ranked_rel &= position <= r[:, None]  # positions past a query's own R do not count
    found = ranked_rel.cumsum(dim=1).double()
    ap = (ranked_rel * found / position).sum(dim=1)
    keep = r > 0
    return ap[keep] / r[keep], found[keep, -1] / r[keep]
