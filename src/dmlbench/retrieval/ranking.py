"""Top-K lists and per-query average precision, for the ranking pictures and `dmlbench query`.

The same convention as evaluate (retrieval/metrics.py): exact cosine search over the given vectors, a stable
sort by descending similarity so ties go to the lower gallery index, the query itself removed by index in
self-retrieval, and vectors whose similarities could be NaN or inf refused (retrieval/ranks.check_features).
Per-query AP@R is evaluate's own (retrieval/metrics.per_query_values), the terms its MAP@R averages.
"""

import torch

from dmlbench.errors import DmlbenchError
from dmlbench.retrieval.metrics import per_query_values
from dmlbench.retrieval.ranks import check_features

CHUNK = 256  # query rows per similarity block: memory ~ CHUNK x gallery x 4 bytes


def top_k(query: torch.Tensor, gallery: torch.Tensor, k: int, exclude: torch.Tensor | None = None
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """(similarities, gallery indices), each (queries, k), best first.

    exclude: per query, the gallery index of the query itself (self-retrieval), removed by index as evaluate does;
    -1 for a query that is not in the gallery.
    """
    candidates = len(gallery) - (0 if exclude is None or not bool((exclude >= 0).any()) else 1)
    if k < 1 or k > candidates:
        raise DmlbenchError(f"top {k} asked, but each query can retrieve {candidates} gallery images: "
                            f"ask for 1 to {candidates}")
    check_features(query, "query")
    check_features(gallery, "gallery")
    values, indices = [], []
    for start in range(0, len(query), CHUNK):
        sim = query[start:start + CHUNK].float() @ gallery.float().T
        if exclude is not None:
            own = exclude[start:start + CHUNK]
            rows = torch.nonzero(own >= 0).flatten()
            sim[rows, own[rows]] = -float("inf")
        # A stable descending sort keeps equal similarities in ascending gallery index, as evaluate ranks.
        value, index = sim.sort(dim=1, descending=True, stable=True)
        values.append(value[:, :k])
        indices.append(index[:, :k])
    return torch.cat(values), torch.cat(indices)


def search_pair(splits: dict) -> tuple[dict, dict, bool]:
    """(queries, gallery, self_mode) of an embeddings file's splits: test against itself, or query against gallery."""
    if "test" in splits:
        return splits["test"], splits["test"], True
    return splits["query"], splits["gallery"], False


def average_precision_at_r(query: torch.Tensor, labels: torch.Tensor, gallery: torch.Tensor | None = None,
                           gallery_labels: torch.Tensor | None = None) -> torch.Tensor:
    """Per query AP@R (the terms of evaluate's MAP@R); NaN for a query without a relevant item (R = 0).

    No gallery: self-retrieval, as evaluate does it for test.csv. The values are evaluate's own (per_query.py).
    """
    values = per_query_values(query, labels, gallery, gallery_labels, ks=(1,), chunk_size=CHUNK)
    return torch.where(values.has, values.ap, torch.full_like(values.ap, float("nan")))


def sample_queries(total: int, count: int, seed: int) -> list[int]:
    """``count`` distinct query indices of ``total`` drawn with ``seed``, ascending (the same on every machine)."""
    generator = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(total, generator=generator)[:count].tolist())


def worst_queries(ap: torch.Tensor, count: int) -> list[int]:
    """The ``count`` queries of lowest AP@R, worst first (ties: lower index first); queries without a
    relevant item (NaN) have no AP and are left out."""
    scored = torch.nonzero(~ap.isnan()).flatten()
    order = ap[scored].sort(stable=True).indices
    return scored[order][:count].tolist()
