"""Each query's own retrieval values (its Recall@K hits, AP@R and R-Precision), and the metrics that average them.

Every metric is a ratio of two sums over queries, ``sum(numerator) / sum(denominator)``: Recall@K sums hits over
all queries, MAP@R and R-Precision sum AP@R and R-Precision over the queries that have a relevant item. Written
so, the point metric and any bootstrap resample of it (queries weighted by how often they were drawn) are the
same formula, which intervals.py uses.
"""

from dataclasses import dataclass
from typing import Sequence

import torch

from dmlbench.retrieval.ranks import Ranks


@dataclass(frozen=True)
class PerQuery:
    """Per query, in query order: its label and what it scored."""

    ks: tuple[int, ...]
    labels: torch.Tensor  # (n,) int64: the query's class, the unit the intervals resample
    first: torch.Tensor  # (n,) int64: non-relevant items ranked before its best relevant item (exact below max K)
    has: torch.Tensor  # (n,) bool: it has a relevant item (R > 0)
    ap: torch.Tensor  # (n,) float64: AP@R (0 where it has no relevant item)
    rp: torch.Tensor  # (n,) float64: R-Precision (0 where it has no relevant item)

    @classmethod
    def empty(cls, ks: Sequence[int], labels: torch.Tensor) -> "PerQuery":
        """Room for the values of the queries of ``labels``; nothing filled yet."""
        n = len(labels)
        return cls(tuple(ks), labels.long(), torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.bool),
                   torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64))

    def fill(self, rows: torch.Tensor, st: Ranks, block: int) -> None:
        """Store the values of st's queries (st's row i is query rows[i]), ``block`` rows at a time: the
        temporaries are block x (largest class) each."""
        for a in range(0, len(st.r), block):
            part, index = st.rows(a, a + block), rows[a:a + block]
            position = torch.arange(part.beaten.shape[1])
            rank = part.beaten + position  # 0-based rank of each relevant item
            inside = rank < part.r[:, None]  # within the top R (padding never is: its position is >= R)
            r = part.r.double().clamp(min=1)  # R = 0 leaves `inside` empty: its values stay 0
            self.first[index] = part.beaten[:, 0]
            self.has[index] = part.r > 0
            self.ap[index] = ((position + 1) / (rank + 1).double() * inside).sum(dim=1) / r
            self.rp[index] = inside.sum(dim=1) / r

    def hits(self, k: int) -> torch.Tensor:
        """(n,) bool: the query's best relevant item ranks within the top k (never, without one)."""
        return (self.first < k) & self.has

    def names(self) -> list[str]:
        """The metrics' names, in the order of columns()."""
        return [f"recall@{k}" for k in self.ks] + ["map@r", "r_precision"]

    def columns(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(numerators, denominators), each (n, metrics) float64: metric j = numerators[:, j].sum() /
        denominators[:, j].sum()."""
        has = self.has.double()
        hits = [self.hits(k).double() for k in self.ks]
        ones = torch.ones(len(has), dtype=torch.float64)
        return (torch.stack([*hits, self.ap * has, self.rp * has], dim=1),  # only queries with a relevant item
                torch.stack([ones] * len(hits) + [has, has], dim=1))

    def metrics(self) -> dict[str, float]:
        """Recall@K per K, MAP@R and R-Precision as fractions; MAP@R and R-Precision are 0.0 when no query has a
        relevant item."""
        numerators, denominators = self.columns()
        return dict(zip(self.names(), ratios(numerators.sum(dim=0), denominators.sum(dim=0)).tolist()))


def ratios(numerators: torch.Tensor, denominators: torch.Tensor) -> torch.Tensor:
    """numerators / denominators elementwise, 0.0 where a denominator is 0 (no query counted)."""
    return torch.where(denominators > 0, numerators / denominators.clamp(min=1e-300), 0.0)
