"""The metrics half of the slow retrieval references: Recall@K, MAP@R and R-Precision from ranked relevance."""

import numpy as np


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
