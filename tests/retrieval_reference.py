"""The metrics half of the slow retrieval references: Recall@K, MAP@R and R-Precision from ranked relevance."""

import numpy as np


def closest_call(query, qlabels, gallery=None, glabels=None) -> float:
    """The smallest float64 gap between the similarities of two gallery items of different relevance to one query
    (adjacent in its ranking; the query itself left out in self-retrieval): how far float32 rounding must move a
    similarity before it reorders a relevant and an irrelevant item, and so changes a metric."""
    self_mode = gallery is None
    if self_mode:
        gallery, glabels = query, qlabels
    sims = np.asarray(query, np.float64) @ np.asarray(gallery, np.float64).T
    qlabels, glabels = np.asarray(qlabels), np.asarray(glabels)
    closest = np.inf
    for i in range(len(sims)):
        keep = np.array([j for j in range(len(glabels)) if not (self_mode and j == i)])
        order = np.argsort(sims[i, keep])
        values, relevant = sims[i, keep][order], glabels[keep][order] == qlabels[i]
        gaps = np.diff(values)[relevant[1:] != relevant[:-1]]
        closest = min(closest, gaps.min(initial=np.inf))
    return float(closest)


def metrics_from_ranked_relevance(ranked: list[list[bool]], ks) -> dict[str, float]:
    """``ranked[i]``: relevance of query i's gallery items in ranked order (the query itself already left out)."""
    hits, aps, rps = [0] * len(ks), [], []
    for relevant in ranked:
        hits = [h + any(relevant[:k]) for h, k in zip(hits, ks)]
        r = sum(relevant)
        if r:
            found = [sum(relevant[:position]) for position in range(1, r + 1)]
            aps.append(sum(f / p for p, (f, rel) in enumerate(zip(found, relevant), 1) if rel) / r)
            rps.append(found[-1] / r)
    out = {f"recall@{k}": h / len(ranked) for k, h in zip(ks, hits)}
    out["map@r"] = float(np.mean(aps)) if aps else 0.0
    out["r_precision"] = float(np.mean(rps)) if rps else 0.0
    return out
