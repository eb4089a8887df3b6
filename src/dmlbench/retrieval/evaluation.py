"""From an embeddings file to the run's metrics record (self-retrieval or query/gallery)."""

from pathlib import Path

import torch

from dmlbench.data.manifest import EVAL_LAYOUTS
from dmlbench.errors import DmlbenchError
from dmlbench.params.load import plain
from dmlbench.retrieval.intervals import bootstrap_facts, metric_intervals
from dmlbench.retrieval.metrics import per_query_values, queries_without_relevant
from dmlbench.retrieval.per_query import PerQuery


def load_embeddings(path: Path, expected_run: dict) -> dict:
    """The embeddings file's dict ("run", "training", "embedding", "splits"), refusing an unreadable or foreign
    file, or one written by another run. Each refusal is one DmlbenchError line naming the file and the fix.
    """
    saved = read_embeddings(path)
    _check_run_stamp(path, saved, expected_run)  # last and on its own: a file's structure never depends on the stamp
    return saved


def read_embeddings(path: Path) -> dict:
    """load_embeddings without the run check, for a caller that checks the "run" stamp itself (compare)."""
    saved = _read_embeddings_file(path)
    for key in ("training", "embedding"):  # what the embed stage copies from the model file and adds
        if not isinstance(saved.get(key), dict):
            raise _foreign(path, f'it holds no "{key}" record')
    _check_splits(path, saved["splits"])
    return saved


def _read_embeddings_file(path: Path) -> dict:
    """The file's top-level dict, which must hold "splits"; a missing, truncated or foreign file is refused."""
    if not Path(path).is_file():
        raise DmlbenchError(f"embeddings file {path} not found: run the embed stage first (dvc repro embed)")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated, empty or foreign file; torch raises many types
        raise DmlbenchError(f"cannot read embeddings file {path} ({type(exc).__name__}: truncated or not written "
                            f"by the embed stage): rerun dvc repro embed") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("splits"), dict):
        raise _foreign(path, 'it holds no "splits" dict')
    return saved


def _check_run_stamp(path: Path, saved: dict, expected_run: dict) -> None:
    """Refuse embeddings written by another run than params.yaml now describes (``Run.record()``)."""
    if plain(saved.get("run")) != plain(expected_run):
        raise DmlbenchError(f"embeddings file {path} comes from another run than params.yaml describes: "
                            f"rerun dvc repro so embed runs again")


def _known_layout(splits: dict) -> bool:
    """Whether the split names are one of the layouts embed_prepared writes (test, or query + gallery)."""
    return any(set(splits) == set(layout) for layout in EVAL_LAYOUTS)


def _check_splits(path: Path, splits: dict) -> None:
    """Refuse splits that embed_prepared cannot have written: another layout, or per split a 2-D float
    "embeddings", a 1-D integer "labels" and a "paths" list of str that do not all count the same images.

    An empty dict passes here (there is nothing inconsistent to name); evaluate_splits refuses it.
    """
    if splits and not _known_layout(splits):
        raise _foreign(path, f"its splits are {sorted(splits)}, not test or query + gallery")
    dims = set()
    for name, split in splits.items():
        problem = _split_problem(split)
        if problem:
            raise _foreign(path, f"split {name!r}: {problem}")
        dims.add(split["embeddings"].shape[1])
    if len(dims) > 1:
        raise _foreign(path, f"its splits' embeddings differ in dimension ({sorted(dims)})")


def _split_problem(split) -> str | None:
    """What is wrong with one split's record, or None."""
    if not isinstance(split, dict) or not {"embeddings", "labels", "paths"} <= set(split):
        return 'not a dict with "embeddings", "labels" and "paths"'
    emb, labels, paths = split["embeddings"], split["labels"], split["paths"]
    if not isinstance(emb, torch.Tensor) or emb.ndim != 2 or not emb.is_floating_point():
        return f"embeddings must be a 2-D float tensor, got {_describe(emb)}"
    if (not isinstance(labels, torch.Tensor) or labels.ndim != 1 or labels.is_floating_point()
            or labels.is_complex() or labels.dtype == torch.bool):
        return f"labels must be a 1-D integer tensor, got {_describe(labels)}"
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        return "paths must be a list of str"
    if not len(emb) == len(labels) == len(paths):
        return f"{len(emb)} embeddings, {len(labels)} labels and {len(paths)} paths must count the same images"
    return None


def _describe(value) -> str:
    """A short description of a value for an error line: a tensor's shape and dtype, else its type."""
    if isinstance(value, torch.Tensor):
        return f"{tuple(value.shape)} {str(value.dtype).removeprefix('torch.')}"
    return type(value).__name__


def _foreign(path: Path, problem: str) -> DmlbenchError:
    """The one-line error for a readable file that the embed stage did not write."""
    return DmlbenchError(f"embeddings file {path} is not an embeddings file of this pipeline ({problem}): "
                         f"rerun dvc repro embed")


# feature -> how per_query_values ranks it: dense embeddings by cosine, binary codes (their signs) by Hamming.
FEATURES = {"dense": "cosine", "binary": "hamming"}


def evaluate_splits(splits: dict, ks: tuple[int, ...], chunk_size: int, features: tuple[str, ...] = ("dense",)
                    ) -> dict:
    """Recall@K, MAP@R and R-Precision per feature (test vs itself, or query vs gallery), with their intervals.

    Dense metrics are the top-level keys; every other feature's metrics sit under its name, e.g. "binary".
    Beside "metrics" (what metrics/summary.json receives) come the sizes: "queries", "gallery" and
    "queries_without_relevant", the queries that have no relevant item to find (misses for Recall@K, left
    out of MAP@R and R-Precision); that count depends on the labels only, so it is one number for all features.
    "intervals" holds each metric's 95 % bootstrap interval over the test classes ([low, high], nested as
    "metrics" is) and how it was made (intervals.py).
    """
    if not _known_layout(splits):
        raise DmlbenchError(f"embeddings hold the splits {sorted(splits)}, not test or query + gallery: "
                            f"rerun dvc repro embed")
    values = {feature: per_query_splits(splits, ks, chunk_size, feature) for feature in features}
    metrics = _nested({feature: v.metrics() for feature, v in values.items()})
    bounds = _nested(metric_intervals(values))
    labels = next(iter(values.values())).labels
    if "test" in splits:
        sizes = {"queries": len(labels), "gallery": len(labels) - 1,
                 "queries_without_relevant": queries_without_relevant(splits["test"]["labels"])}
    else:
        query, gallery = splits["query"]["labels"], splits["gallery"]["labels"]
        sizes = {"queries": len(query), "gallery": len(gallery),
                 "queries_without_relevant": queries_without_relevant(query, gallery)}
    return {"metrics": metrics, **sizes, "intervals": {**bootstrap_facts(labels), "metrics": bounds}}


def per_query_splits(splits: dict, ks: tuple[int, ...], chunk_size: int, feature: str = "dense") -> PerQuery:
    """What each query of ``splits`` scored with ``feature`` (test vs itself, or query vs gallery): the values
    evaluate averages into its metrics and resamples into their intervals."""
    similarity = FEATURES[feature]
    if "test" in splits:
        test = splits["test"]
        return per_query_values(test["embeddings"], test["labels"], ks=ks, chunk_size=chunk_size,
                                similarity=similarity)
    query, gallery = splits["query"], splits["gallery"]
    return per_query_values(query["embeddings"], query["labels"], gallery["embeddings"], gallery["labels"], ks=ks,
                            chunk_size=chunk_size, similarity=similarity)


def _nested(by_feature: dict[str, dict]) -> dict:
    """{feature: {name: value}} as the metrics file lays it out: dense at the top level, every other feature
    under its name; numbers rounded to 6 decimals (lists of them too)."""
    out: dict = {}
    for feature, values in by_feature.items():
        rounded = {k: [round(x, 6) for x in v] if isinstance(v, list) else round(v, 6) for k, v in values.items()}
        if feature == "dense":
            out.update(rounded)
        else:
            out[feature] = rounded
    return out
