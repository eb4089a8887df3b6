"""Stage prepare: raw dataset layout -> data/prepared/<dataset>-<crop>/ (resized images + manifests)."""

import sys
from pathlib import Path

from dmlbench import atomic, stage
from dmlbench.config import section
from dmlbench.data.manifest import read_manifest
from dmlbench.data.prepare import IMAGE_STATS, SKIP_REPORT, image_stats, prepare_dataset, read_skip_report
from dmlbench.data.readers import read_dataset
from dmlbench.identity import prepared_dir
from dmlbench.sections import DataConfig, PrepareConfig, data_selection

SYNTHETIC_RAW = Path("data/synthetic")  # the synthesize stage's out


def main(params: dict) -> None:
    exp = data_selection(params)
    data = section(params, "data", DataConfig)
    cfg = section(params, "prepare", PrepareConfig)
    raw = SYNTHETIC_RAW if exp.dataset == "synthetic" else Path(data.root) / exp.dataset
    out = prepared_dir(exp.dataset, exp.crop)
    records = read_dataset(exp.dataset, raw, check_counts=cfg.check_counts)
    summary = prepare_dataset(records, raw, out, exp.crop == "cropped", cfg.max_side, cfg.workers,
                              skip_corrupt=cfg.skip_corrupt, jpeg_quality=cfg.jpeg_quality)
    atomic.write_json(out / "summary.json", summary)
    if "train" in summary:  # the training images' mean/std, for methods that normalise by the dataset's (LREC)
        rows = read_manifest(out / "train.csv")
        atomic.write_json(out / IMAGE_STATS, image_stats([out / path for path, _ in rows], cfg.workers))
    print(f"prepare: {raw} -> {out}: {summary}")
    if cfg.skip_corrupt:
        skipped = len(read_skip_report(out / SKIP_REPORT))
        print(f"prepare: {skipped} missing, unreadable or too large image(s) skipped, listed in "
              f"{out / SKIP_REPORT}",
              file=sys.stderr if skipped else sys.stdout)


if __name__ == "__main__":
    stage.run(main)
