"""From an embeddings file to the run's metrics record (self-retrieval or query/gallery)."""

from pathlib import Path

import torch

from dmlbench.config import plain
from dmlbench.errors import DmlbenchError
from dmlbench.experiment import Experiment, run_stamp
from dmlbench.retrieval import retrieval_metrics


def load_embeddings(path: Path, exp: Experiment, cfg) -> dict:
    """Read an embeddings file, refusing one written by a run with other params."""
    if not Path(path).is_file():
        raise DmlbenchError(f"embeddings file {path} not found: run the embed stage first (dvc repro embed)")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if plain(saved.get("run")) != plain(run_stamp(exp, cfg)):
        raise DmlbenchError(f"embeddings file {path} comes from another run than params.yaml describes: "
                            f"rerun dvc repro so embed runs again")
    return saved["splits"]


def evaluate_splits(splits: dict, ks: tuple[int, ...], chunk_size: int) -> dict:
    """Recall@K, MAP@R and R-Precision: test vs itself, or query vs gallery."""
    if "test" in splits:
        test = splits["test"]
        metrics = retrieval_metrics(test["embeddings"], test["labels"], ks=ks, chunk_size=chunk_size)
        sizes = {"queries": len(test["labels"]), "gallery": len(test["labels"]) - 1}
    else:
        query, gallery = splits["query"], splits["gallery"]
        metrics = retrieval_metrics(query["embeddings"], query["labels"], gallery["embeddings"],
                                    gallery["labels"], ks=ks, chunk_size=chunk_size)
        sizes = {"queries": len(query["labels"]), "gallery": len(gallery["labels"])}
    return {"metrics": {k: round(v, 6) for k, v in metrics.items()}, **sizes}
