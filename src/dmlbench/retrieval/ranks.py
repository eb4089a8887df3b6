"""The engine behind metrics.py: the rank of every relevant item of every query, counted block by block.

Recall@K needs the rank of a query's best relevant item and MAP@R / R-Precision the ranks of those within the
top R, so no list is ever sorted: each query knows its relevant items (in ranked order) and counts the other
items that rank before each of them. Beyond its matrix product a block costs one pass (the maxima of short
row segments): only segments holding an item at or above their query's threshold, one that could still move
a relevant item within the top R or the best one below max K, are looked at closely. In self-retrieval the
items are regrouped so that every class lies in one diagonal block, and each off-diagonal block is computed
once and read both ways, which halves the matrix products.

Every similarity must be finite: NaN compares false with everything, so a NaN relevant item would never be
outranked and would count as a perfect match. The two entry points, self_ranks and cross_ranks, therefore
refuse vectors holding a NaN or an infinity, or values so large that a dot product could overflow float32
to inf (and inf - inf to NaN). A zero vector is finite and ranks: its similarity to every item is 0, so
as a query it ties everything and its list is gallery-index order, and as an item it sits at 0 in every list.
"""

import math
from dataclasses import dataclass

import torch

from dmlbench.errors import DmlbenchError

INF = float("inf")
MAX_DOT = 1e38  # below float32's largest value, 3.4e38, with room for the rounding of long sums
ROW_BLOCK = 4096  # rows examined at a time when counting bad rows: bounds that pass's memory
SEGMENT = 32  # row segment whose maximum is checked first: a block costs one pass beyond its product
FIRST_SLICE = 512  # columns of a diagonal block absorbed at a time
COMPARE_BUDGET = 1 << 20  # (candidate x relevant item) comparisons per step, bounding its memory


@dataclass
class Ranks:
    """Per query: its relevant items in ranked order, and how many other items rank before each.

    Counts are exact for relevant items within the top R and for the best one below max K; past that they
    only grow, which is all the metrics need to know.
    """

    pos_val: torch.Tensor  # (n, P) similarities in the (-similarity, gallery index) order; -inf pads
    pos_idx: torch.Tensor  # (n, P) gallery indices
    r: torch.Tensor  # (n,) number of relevant items, R
    beaten: torch.Tensor  # (n, P) int64 non-relevant items ranked before each relevant item
    threshold: torch.Tensor  # (n,) similarity below which no item matters any more; +inf: settled

    @classmethod
    def empty(cls, n: int, p: int) -> "Ranks":
        """State of n queries with room for p relevant items each, nothing seen yet."""
        return cls(torch.full((n, p), -INF), torch.zeros(n, p, dtype=torch.long),
                   torch.zeros(n, dtype=torch.long), torch.zeros(n, p, dtype=torch.long), torch.full((n,), INF))

    def rows(self, a: int, b: int) -> "Ranks":
        """A view of queries a to b."""
        return Ranks(self.pos_val[a:b], self.pos_idx[a:b], self.r[a:b], self.beaten[a:b], self.threshold[a:b])


def relevant_columns(row_labels: torch.Tensor, col_labels: torch.Tensor):
    """(n, widest class) columns sharing each row's label, ascending per row, and a mask of the real ones."""
    order = col_labels.argsort(stable=True)  # by label, then by column
    sorted_labels = col_labels[order]
    lo = torch.searchsorted(sorted_labels, row_labels)
    count = torch.searchsorted(sorted_labels, row_labels, right=True) - lo
    offset = torch.arange(max(int(count.max()), 1))
    return order[(lo[:, None] + offset).clamp(max=len(order) - 1)], offset < count[:, None]


def take_relevant(st: Ranks, start: int, sim: torch.Tensor, where, valid, cols, max_k: int, self_cols=None) -> None:
    """Record sim's relevant entries (where[valid]) in st, then hide them and each row's own item with -inf.

    cols: ascending gallery index of each column; self_cols: the column of each row's own item, if any.
    """
    if self_cols is not None:
        valid = valid & (where != self_cols[:, None])
        sim[torch.arange(len(sim)), self_cols] = -INF
    values = sim.gather(1, where).masked_fill_(~valid, -INF)
    # A stable sort of column-ascending entries gives the (-similarity, index) order.
    values, by_rank = values.sort(dim=1, descending=True, stable=True)
    p, rows = min(values.shape[1], st.pos_val.shape[1]), torch.arange(start, start + len(sim))
    st.pos_val[rows, :p], st.pos_idx[rows, :p] = values[:, :p], cols[where.gather(1, by_rank[:, :p])]
    st.r[rows] = valid.sum(dim=1)
    st.threshold[rows] = _threshold(st, rows, max_k)
    sim[torch.arange(len(sim))[:, None].expand_as(where)[valid], where[valid]] = -INF


def absorb(st: Ranks, blocks, max_k: int) -> None:
    """Count the items of each (start, sim, cols) block, none relevant, that rank before the relevant items of
    its rows, then update the thresholds of the rows that moved; the blocks' rows must be distinct queries.

    Row i of sim (which may be a transposed view) is query start + i of st; cols: gallery index of each column.
    """
    found = []
    for start, sim, cols in blocks:
        query, candidate, values = _candidates(sim, st.threshold[start:start + len(sim)])
        found.append((query + start, values, cols[candidate]))
    query, values, index = (torch.cat(parts) for parts in zip(*found))
    if not len(query):
        return
    rows, local = torch.unique(query, return_inverse=True)
    _count(st, rows, local, values, index)
    st.threshold[rows] = _threshold(st, rows, max_k)


def _candidates(sim: torch.Tensor, threshold: torch.Tensor):
    """(row, column, value) of the entries of sim >= their row's threshold."""
    width = sim.shape[1]
    whole = width - width % SEGMENT
    found = [_segment_candidates(sim[:, :whole], threshold)] if whole else []
    if whole < width:
        row, col = torch.nonzero(sim[:, whole:] >= threshold[:, None], as_tuple=True)
        found.append((row, col + whole, sim[row, col + whole]))
    return tuple(torch.cat(parts) for parts in zip(*found))


def _segment_candidates(sim: torch.Tensor, threshold: torch.Tensor):
    """_candidates for a width that SEGMENT divides: segment maxima (one pass, a small output) say where to look,
    so no compare-and-nonzero runs over the whole block."""
    segments = sim.unflatten(1, (-1, SEGMENT))
    if sim.stride(1) == 1:
        peaks = segments.amax(dim=2)
    else:  # a transposed block: reduce over slabs of rows, along memory order
        peaks = sim.T.unflatten(0, (-1, SEGMENT)).amax(dim=1).T
    row, segment = torch.nonzero(peaks >= threshold[:, None], as_tuple=True)
    values = segments[row, segment]  # (hot segments, SEGMENT)
    hit, offset = torch.nonzero(values >= threshold[row, None], as_tuple=True)
    return row[hit], segment[hit] * SEGMENT + offset, values[hit, offset]


def _threshold(st: Ranks, rows: torch.Tensor, max_k: int) -> torch.Tensor:
    """Per row, the similarity below which no item can matter any more (+inf: the query is settled).

    That is the last relevant item still within the top R, else the best one while it is below max K.
    """
    beaten, pos_val, r = st.beaten[rows], st.pos_val[rows], st.r[rows]
    position = torch.arange(beaten.shape[1])
    last = (beaten + position < r[:, None]).sum(dim=1) - 1  # those within the top R are a prefix
    threshold = pos_val.gather(1, last.clamp(min=0)[:, None]).squeeze(1)
    open_recall = (r > 0) & (beaten[:, 0] < max_k)
    return torch.where(last >= 0, threshold, torch.where(open_recall, pos_val[:, 0], INF))


def _count(st: Ranks, rows: torch.Tensor, entry_row, values: torch.Tensor, index: torch.Tensor) -> None:
    """Add candidates (row of `rows`, value, gallery index) to the counts of the relevant items they precede."""
    p = st.pos_val.shape[1]
    step = max(1, COMPARE_BUDGET // p)
    ahead = []  # per candidate: how many of its row's relevant items rank before it
    for a in range(0, len(values), step):
        row, value, idx = rows[entry_row[a:a + step]], values[a:a + step, None], index[a:a + step, None]
        pos_val, pos_idx = st.pos_val[row], st.pos_idx[row]
        ahead.append(((pos_val > value) | ((pos_val == value) & (pos_idx < idx))).sum(dim=1))
    # A candidate with j relevant items ahead of it ranks before relevant items j, j + 1, ...
    per_row = torch.bincount(entry_row * (p + 1) + torch.cat(ahead), minlength=len(rows) * (p + 1))
    st.beaten[rows] += per_row.view(-1, p + 1).cumsum(dim=1)[:, :p]


def nonfinite_rows(x: torch.Tensor) -> int:
    """How many rows of x hold a NaN or an infinity; one pass without a copy when there are none."""
    if not len(x):
        return 0
    low, high = torch.aminmax(x)  # NaN propagates into both
    if torch.isfinite(low) and torch.isfinite(high):
        return 0
    return sum(int((~torch.isfinite(x[a:a + ROW_BLOCK])).any(dim=1).sum()) for a in range(0, len(x), ROW_BLOCK))


def check_features(x: torch.Tensor, name: str) -> None:
    """Refuse vectors whose dot products could be NaN or infinite (see the module docstring).

    Every partial sum of a dot product is at most dim x max|x|^2 in magnitude, so values within
    sqrt(MAX_DOT / dim) keep all similarities finite; L2-normalised vectors (|x| <= 1) always pass.
    """
    if not len(x):
        return
    low, high = torch.aminmax(x)  # NaN propagates into both; one pass, no copy
    limit = math.sqrt(MAX_DOT / max(x.shape[1], 1))
    if -limit <= low and high <= limit:
        return
    bad = nonfinite_rows(x)
    if bad:
        raise DmlbenchError(f"{bad} of {len(x)} {name} vectors hold NaN or inf: their similarities would rank "
                            f"as perfect matches; pass finite embeddings")
    raise DmlbenchError(f"{name} vectors hold values up to {max(-low, high):.3g}: their dot products could "
                        f"overflow float32; pass L2-normalised embeddings")


def self_ranks(x: torch.Tensor, labels: torch.Tensor, tile: int, max_k: int, max_class: int):
    """(Ranks of every item against all others, rows in a regrouped order; that order: row i is item order[i]),
    or None when a class outgrows a tile or max_class (each query keeps a slot per relevant item: the state is
    len(x) x largest class)."""
    check_features(x, "item")
    tiles = _class_tiles(labels, tile)
    if tiles is None or tiles[2] > max_class:
        return None
    spans, perm, largest = tiles
    labels = labels[perm]
    st = Ranks.empty(len(x), max(largest - 1, 1))
    widest = max(b - a for a, b in spans)
    buffer = torch.empty(widest * _aligned(widest))  # one block's memory, reused: no page faults
    # The regrouped rows are gathered a block at a time into two reused buffers, not as one copy of x: at
    # LREC's SOP size (60,502 x 24,576 floats) that copy alone would be 5.9 GB; the gathers cost far less
    # than the products they feed.
    rows_buffer, cols_buffer = (torch.empty(widest, x.shape[1], dtype=x.dtype) for _ in range(2))

    def block(a: int, b: int, out: torch.Tensor) -> torch.Tensor:
        return torch.index_select(x, 0, perm[a:b], out=out[:b - a])

    # Diagonal blocks first: they hold every relevant item, so each query knows its own before the rest.
    for a, b in spans:
        rows = block(a, b, rows_buffer)
        sim = _product(rows, rows, buffer)
        where, valid = relevant_columns(labels[a:b], labels[a:b])
        take_relevant(st, a, sim, where, valid, perm[a:b], max_k, torch.arange(b - a))
        # In slices: the first one already lifts most thresholds from the worst relevant item, so the
        # others yield far fewer candidates.
        for c in range(0, b - a, FIRST_SLICE):
            absorb(st, [(a, sim[:, c:c + FIRST_SLICE], perm[a + c:a + c + FIRST_SLICE])], max_k)
    for i, (a, b) in enumerate(spans):
        rows = block(a, b, rows_buffer)
        for c, d in spans[i + 1:]:
            sim = _product(rows, block(c, d, cols_buffer), buffer)  # rows for queries a:b, columns for c:d
            absorb(st, [(a, sim, perm[c:d]), (c, sim.T, perm[a:b])], max_k)
    return st, perm


def _product(rows: torch.Tensor, cols: torch.Tensor, buffer: torch.Tensor) -> torch.Tensor:
    """rows @ cols.T in (the front of) buffer, its rows 64-byte aligned: an odd row stride slows the BLAS
    product by a third or more."""
    stride = _aligned(len(cols))
    return torch.mm(rows, cols.T, out=buffer[:len(rows) * stride].view(len(rows), stride)[:, :len(cols)])


def _aligned(width: int) -> int:
    """width rounded up to 16 floats (64 bytes)."""
    return -(-width // 16) * 16


def cross_ranks(query, query_labels, gallery, gallery_labels, chunk: int, max_k: int, self_mode: bool):
    """An iterator over the Ranks of each chunk of queries against the whole gallery; self_mode excludes query
    i as gallery item i. The vectors are checked here, at the call, not when the first chunk is drawn."""
    check_features(query, "query")
    if gallery is not query:
        check_features(gallery, "gallery")
    return _cross_chunks(query, query_labels, gallery, gallery_labels, chunk, max_k, self_mode)


def _cross_chunks(query, query_labels, gallery, gallery_labels, chunk: int, max_k: int, self_mode: bool):
    """cross_ranks' generator, over checked vectors."""
    cols = torch.arange(len(gallery))
    buffer = torch.empty(min(chunk, len(query)) * _aligned(len(gallery)))  # reused: no page faults per chunk
    for start in range(0, len(query), chunk):
        sim = _product(query[start:start + chunk], gallery, buffer)
        where, valid = relevant_columns(query_labels[start:start + chunk], gallery_labels)
        st = Ranks.empty(len(sim), where.shape[1])
        own = torch.arange(start, start + len(sim)) if self_mode else None
        take_relevant(st, 0, sim, where, valid, cols, max_k, own)
        # Column slices in turn: thresholds rise as the blocks go, so later slices have fewer candidates.
        for a in range(0, len(gallery), chunk):
            absorb(st, [(0, sim[:, a:a + chunk], cols[a:a + chunk])], max_k)
        yield st


def _class_tiles(labels: torch.Tensor, tile: int):
    """(spans of at most `tile` items made of whole classes, the item order realising them, largest class)."""
    order = labels.argsort(stable=True)
    sizes = labels[order].unique_consecutive(return_counts=True)[1].tolist()
    if max(sizes) > tile:
        return None
    spans, start, end = [], 0, 0
    for size in sizes:
        if end + size - start > tile:
            spans.append((start, end))
            start = end
        end += size
    spans.append((start, end))
    # Inside a span items go back to ascending index, so column order is gallery-index order (stable ties).
    span_of = torch.repeat_interleave(torch.arange(len(spans)), torch.tensor([b - a for a, b in spans]))
    return spans, order[torch.argsort(span_of * len(labels) + order)], max(sizes)
