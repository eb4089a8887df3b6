"""One prepare run, as the single-experiment and grid prepare stages both do it: read a raw dataset, write the
prepared folder, its summary and (for methods that normalise by the dataset, LREC) the training images' mean/std."""

import sys
from pathlib import Path

from dmlbench import atomic
from dmlbench.data.folder import ignored_summary
from dmlbench.data.manifest import read_manifest
from dmlbench.data.prepare import IMAGE_STATS, SKIP_REPORT, image_stats, prepare_dataset, read_skip_report
from dmlbench.data.readers import ignored_entries, image_fix, read_dataset
from dmlbench.params.experiment import CROPS
from dmlbench.params.load import section
from dmlbench.params.sections import DataConfig, DataSelection, PrepareConfig, data_selection

SYNTHETIC_RAW = Path("data/synthetic")  # the synthesize stage's out: the demo's raw dataset
UNCROPPED, CROPPED = CROPS  # the whole image, or cut to its bounding box (the datasets that have boxes)


def raw_folder(dataset: str, data_root: str) -> Path:
    """Where the raw files of ``dataset`` are: the synthesized demo, or ``<data_root>/<dataset>``."""
    return SYNTHETIC_RAW if dataset == "synthetic" else Path(data_root) / dataset


def prepare_sections(params: dict) -> tuple[DataSelection, DataConfig, PrepareConfig]:
    """What the prepare stage reads of params.yaml: dataset and crop, the data root, the prepare section."""
    return data_selection(params), section(params, "data", DataConfig), section(params, "prepare", PrepareConfig)


def prepare_folder(dataset: str, crop: str, raw: Path, out: Path, cfg: PrepareConfig) -> dict:
    """Prepare ``raw`` into ``out`` with ``cfg`` (a PrepareConfig); returns the summary it writes."""
    records = read_dataset(dataset, raw, check_counts=cfg.check_counts)
    ignored = ignored_entries(dataset, raw)
    summary = prepare_dataset(records, raw, out, crop == CROPPED, cfg.max_side, cfg.workers,
                              skip_corrupt=cfg.skip_corrupt, jpeg_quality=cfg.jpeg_quality,
                              fix=image_fix(dataset), ignored=ignored)
    atomic.write_json(out / "summary.json", summary)
    if "train" in summary:  # the training images' mean/std, for methods that normalise by the dataset's (LREC)
        rows = read_manifest(out / "train.csv")
        atomic.write_json(out / IMAGE_STATS, image_stats([out / path for path, _ in rows], cfg.workers))
    if ignored:  # a hidden class folder would otherwise vanish from the split without a word
        print(f"prepare: not images of a class, ignored in {raw}: {ignored_summary(ignored)}; listed in "
              f"{out / SKIP_REPORT}", file=sys.stderr)
    if cfg.skip_corrupt:
        skipped = len(read_skip_report(out / SKIP_REPORT)) - len(ignored)
        print(f"prepare: {skipped} missing, unreadable, too large or unusably shaped image(s) skipped, listed in "
              f"{out / SKIP_REPORT}", file=sys.stderr if skipped else sys.stdout)
    return summary
