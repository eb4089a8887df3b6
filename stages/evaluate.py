"""Stage evaluate: embeddings -> metrics/runs/<run>.json, metrics/summary.json, plots/recall_at_k.csv."""

import dataclasses
from pathlib import Path

from dmlbench import atomic, stage
from dmlbench.config import section
from dmlbench.data.protocol import recall_ks
from dmlbench.retrieval.evaluation import evaluate_splits, load_embeddings
from dmlbench.sections import EvaluateConfig

EMBEDDINGS = Path("embeddings/embeddings.pt")


def main(params: dict) -> None:
    exp = stage.experiment(params)
    method, cfg = stage.method_config(params, exp)
    ecfg = section(params, "evaluate", EvaluateConfig)
    ks = ecfg.recall_ks or recall_ks(exp.dataset)  # evaluate.recall_ks overrides the dataset's list
    result = evaluate_splits(load_embeddings(EMBEDDINGS, exp, cfg), ks, ecfg.chunk_size, method.features)
    record = {"run": {**dataclasses.asdict(exp), "run_id": exp.run_id, "selection": "last epoch",
                      "variant": method.describe(cfg), "epochs": cfg.epochs,
                      "warmup_epochs": getattr(cfg, "warmup_epochs", 0),
                      "config": dataclasses.asdict(cfg)},
              "recall_ks": {"ks": list(ks), "source": "params" if ecfg.recall_ks else "dataset"}, **result}
    atomic.write_json(Path("metrics/runs") / f"{exp.run_id}.json", record)
    atomic.write_json(Path("metrics/summary.json"), result["metrics"])
    atomic.write_text(Path("plots/recall_at_k.csv"), recall_curve(result["metrics"], ks))
    for feature, values in feature_rows(result["metrics"]):
        shown = " ".join(f"{k}={v:.4f}" for k, v in values.items())
        print(f"evaluate: {exp.run_id} ({feature}): {shown}")


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
