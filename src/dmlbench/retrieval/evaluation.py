"""From an embeddings file to the run's metrics record (self-retrieval or query/gallery)."""

from pathlib import Path

import torch

from dmlbench.config import plain
from dmlbench.errors import DmlbenchError
from dmlbench.sections import Experiment, run_stamp
from dmlbench.retrieval.metrics import retrieval_metrics


def load_embeddings(path: Path, exp: Experiment, cfg) -> dict:
    """Read an embeddings file, refusing one written by a run with other params."""
    if not Path(path).is_file():
        raise DmlbenchError(f"embeddings file {path} not found: run the embed stage first (dvc repro embed)")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if plain(saved.get("run")) != plain(run_stamp(exp, cfg)):
        raise DmlbenchError(f"embeddings file {path} comes from another run than params.yaml describes: "
                            f"rerun dvc repro so embed runs again")
    return saved["splits"]


# feature -> how retrieval_metrics ranks it: dense embeddings by cosine, binary codes (their signs) by Hamming.
FEATURES = {"dense": "cosine", "binary": "hamming"}


def evaluate_splits(splits: dict, ks: tuple[int, ...], chunk_size: int, features: tuple[str, ...] = ("dense",)
                    ) -> dict:
    """Recall@K, MAP@R and R-Precision per feature (test vs itself, or query vs gallery).

    Dense metrics are the top-level keys; every other feature's metrics sit under its name, e.g. "binary".
    """
    metrics: dict = {}
    for feature in features:
        values = _feature_metrics(splits, ks, chunk_size, FEATURES[feature])
        rounded = {k: round(v, 6) for k, v in values.items()}
        if feature == "dense":
            metrics.update(rounded)
        else:
            metrics[feature] = rounded
    if "test" in splits:
        sizes = {"queries": len(splits["test"]["labels"]), "gallery": len(splits["test"]["labels"]) - 1}
    else:
        sizes = {"queries": len(splits["query"]["labels"]), "gallery": len(splits["gallery"]["labels"])}
    return {"metrics": metrics, **sizes}


def _feature_metrics(splits: dict, ks: tuple[int, ...], chunk_size: int, similarity: str) -> dict:
    if "test" in splits:
        test = splits["test"]
        return retrieval_metrics(test["embeddings"], test["labels"], ks=ks, chunk_size=chunk_size,
                                 similarity=similarity)
    query, gallery = splits["query"], splits["gallery"]
    return retrieval_metrics(query["embeddings"], query["labels"], gallery["embeddings"], gallery["labels"], ks=ks,
                             chunk_size=chunk_size, similarity=similarity)
