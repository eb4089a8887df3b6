"""Stage prepare: raw dataset layout -> data/prepared/<dataset>-<crop>/ (resized images + manifests)."""

from pathlib import Path

from dmlbench import atomic, stage
from dmlbench.config import section
from dmlbench.data.prepare import prepare_dataset
from dmlbench.data.readers import read_dataset
from dmlbench.experiment import DataConfig, PrepareConfig

SYNTHETIC_RAW = Path("data/synthetic")  # the synthesize stage's out


def main(params: dict) -> None:
    exp = stage.experiment(params)
    data = section(params, "data", DataConfig)
    cfg = section(params, "prepare", PrepareConfig)
    raw = SYNTHETIC_RAW if exp.dataset == "synthetic" else Path(data.root) / exp.dataset
    out = stage.prepared_dir(exp)
    records = read_dataset(exp.dataset, raw)
    summary = prepare_dataset(records, raw, out, exp.crop == "cropped", cfg.max_side, cfg.workers)
    atomic.write_json(out / "summary.json", summary)
    print(f"prepare: {raw} -> {out}: {summary}")


if __name__ == "__main__":
    stage.run(main)
