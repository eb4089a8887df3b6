"""Stage pictures: the run's embeddings + prepared images -> plots/queries.png, plots/worst_queries.png and
plots/recall_at_k.png (the current run's view, at fixed paths, so `dvc plots diff` compares two experiments)."""

import json

from dmlbench.errors import DmlbenchError
from dmlbench.identity import prepared_dir, QUERIES_PICTURE, RECALL_PICTURE, WORST_PICTURE
from dmlbench.pipeline import experiment, stage
from dmlbench.pipeline.run_name import run_of
from dmlbench.reporting.pictures import draw_rows, plot_recall, split_rows
from dmlbench.retrieval.ranking import average_precision_at_r, sample_queries, search_pair, worst_queries
from dmlbench.retrieval.evaluation import load_embeddings

ROWS = 8  # queries per picture
TOP = 8  # results per query
SAMPLE_SEED = 0  # not the run's seed: every experiment on a dataset shows the same queries


def main() -> None:
    xp = experiment.load()
    prepared = prepared_dir(xp.experiment.dataset, xp.experiment.crop)
    run = run_of(xp, prepared)
    saved = load_embeddings(run.paths.embeddings, run.record())
    query, gallery, self_mode = search_pair(saved["splits"])
    top = min(TOP, len(gallery["labels"]) - self_mode)
    sample = sample_queries(len(query["labels"]), ROWS, SAMPLE_SEED)
    ap = average_precision_at_r(query["embeddings"], query["labels"],
                                None if self_mode else gallery["embeddings"], None if self_mode else gallery["labels"])
    worst = worst_queries(ap, ROWS)
    ks, curves = recall_curves(run)
    draw_rows(split_rows(saved["splits"], prepared, sample, top), f"{run.name}: sample queries (seed "
              f"{SAMPLE_SEED}), top {top}", QUERIES_PICTURE)
    captions = [f"AP@R: {ap[q]:.3f} ({int(query['labels'][q])})" for q in worst]
    draw_rows(split_rows(saved["splits"], prepared, worst, top, captions),
              f"{run.name}: the {len(worst)} queries of lowest AP@R", WORST_PICTURE)
    plot_recall(ks, curves, RECALL_PICTURE, run.name)
    print(f"pictures: {run.name}: {len(sample)} sample and {len(worst)} worst queries, top {top} -> "
          f"{QUERIES_PICTURE}, {WORST_PICTURE}, {RECALL_PICTURE}")


def recall_curves(run) -> tuple[list[int], dict[str, list[float]]]:
    """The Ks and the Recall@K of each feature ("dense", "binary", ...) from the run's metrics file."""
    path = run.paths.metrics
    try:
        record = json.loads(path.read_text())
        if record["run"]["name"] != run.name:
            raise ValueError("another run's file")
        ks = [int(k) for k in record["recall_ks"]["ks"]]
        metrics = record["metrics"]
        curves = {"dense": [float(metrics[f"recall@{k}"]) for k in ks]}
        for feature, values in metrics.items():
            if isinstance(values, dict):
                curves[feature] = [float(values[f"recall@{k}"]) for k in ks]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DmlbenchError(f"cannot read the Recall@K of {run.name} from {path} ({type(exc).__name__}: {exc}): "
                            f"rerun dvc repro evaluate") from None
    if not ks:
        raise DmlbenchError(f"{path} holds no Recall@K: rerun dvc repro evaluate")
    return ks, curves


if __name__ == "__main__":
    stage.run(main)
