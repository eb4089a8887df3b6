"""Stage evaluate: the run's embeddings -> metrics/runs/<run>.json, metrics/summary.json, plots/recall_at_k.csv."""

from dmlbench import atomic
from dmlbench.identity import RECALL_CURVE, SUMMARY, prepared_dir
from dmlbench.pipeline import experiment, stage
from dmlbench.pipeline.run_name import run_of
from dmlbench.pipeline.steps import evaluate_run


def main() -> None:
    xp = experiment.load()
    run = run_of(xp, prepared_dir(xp.experiment.dataset, xp.experiment.crop))
    result = evaluate_run(xp, run, run.paths)
    atomic.write_json(SUMMARY, result["metrics"])
    atomic.write_text(RECALL_CURVE, recall_curve(result["metrics"], xp.recall_ks))
    for feature, values in feature_rows(result["metrics"]):
        shown = " ".join(f"{k}={v:.4f}" for k, v in values.items())
        print(f"evaluate: {run.name} ({feature}): {shown}")


def feature_rows(metrics: dict) -> list[tuple[str, dict]]:
    """[("dense", {...}), ("binary", {...}), ...] from the nested metrics record."""
    dense = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
    return [("dense", dense)] + [(k, v) for k, v in metrics.items() if isinstance(v, dict)]


def recall_curve(metrics: dict, ks) -> str:
    """CSV k,recall (dense) plus a <feature>_recall column per extra feature, for `dvc plots`."""
    rows = feature_rows(metrics)
    header = ",".join(["k", "recall", *[f"{name}_recall" for name, _ in rows[1:]]])
    lines = [",".join([str(k), *[str(values[f"recall@{k}"]) for _, values in rows]]) for k in ks]
    return "\n".join([header, *lines]) + "\n"


if __name__ == "__main__":
    stage.run(main)
