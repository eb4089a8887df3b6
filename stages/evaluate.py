"""Stage evaluate: embeddings -> metrics/runs/<run>.json, metrics/summary.json, plots/recall_at_k.csv."""

import dataclasses
from pathlib import Path

from dmlbench import atomic, stage
from dmlbench.config import section
from dmlbench.data.protocol import recall_ks
from dmlbench.evaluation import evaluate_splits, load_embeddings
from dmlbench.experiment import EvaluateConfig

EMBEDDINGS = Path("embeddings/embeddings.pt")


def main(params: dict) -> None:
    exp = stage.experiment(params)
    method, cfg = stage.method_config(params, exp)
    ecfg = section(params, "evaluate", EvaluateConfig)
    ks = ecfg.recall_ks or recall_ks(exp.dataset)  # evaluate.recall_ks overrides the dataset's list
    result = evaluate_splits(load_embeddings(EMBEDDINGS, exp, cfg), ks, ecfg.chunk_size)
    record = {"run": {**dataclasses.asdict(exp), "run_id": exp.run_id, "selection": "last epoch",
                      "variant": method.describe(cfg), "epochs": cfg.epochs,
                      "config": dataclasses.asdict(cfg)},
              "recall_ks": {"ks": list(ks), "source": "params" if ecfg.recall_ks else "dataset"}, **result}
    atomic.write_json(Path("metrics/runs") / f"{exp.run_id}.json", record)
    atomic.write_json(Path("metrics/summary.json"), result["metrics"])
    curve = "k,recall\n" + "".join(f"{k},{result['metrics'][f'recall@{k}']}\n" for k in ks)
    atomic.write_text(Path("plots/recall_at_k.csv"), curve)
    shown = " ".join(f"{k}={v:.4f}" for k, v in result["metrics"].items())
    print(f"evaluate: {exp.run_id}: {shown}")


if __name__ == "__main__":
    stage.run(main)
