"""Decode, crop, downscale and re-save a dataset's images; write one manifest per split."""

from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from dmlbench import atomic
from dmlbench.data.manifest import write_manifest
from dmlbench.data.records import Record
from dmlbench.errors import DmlbenchError

JPEG_QUALITY = 95


def prepare_image(source: Path, target: Path, box: tuple[int, int, int, int] | None,
                  max_side: int | None) -> None:
    """RGB, cropped to ``box`` when given, longer side <= ``max_side`` (never upscaled), saved as JPEG."""
    try:
        with Image.open(source) as image:
            image = image.convert("RGB")
    except OSError as exc:  # PIL raises OSError subclasses for truncated and unidentified files
        raise DmlbenchError(f"corrupt or unreadable image {source} ({exc}): replace it from the original "
                            f"archive") from None
    if box is not None:
        image = image.crop(box)
    if max_side is not None and max(image.size) > max_side:
        scale = max_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BICUBIC)
    with atomic.atomic_path(target) as tmp:
        image.save(tmp, format="JPEG", quality=JPEG_QUALITY)


def _job(args: tuple) -> None:
    prepare_image(*args)


def prepare_dataset(records: list[Record], raw_root: Path, out_dir: Path, crop: bool,
                    max_side: int | None, workers: int = 0) -> dict:
    """Write ``out_dir``/images/... and ``out_dir``/<split>.csv; return counts per split."""
    records = sorted(records, key=lambda r: (r.split, r.path))
    jobs = [(Path(raw_root) / r.path, Path(out_dir) / r.path, r.box if crop else None, max_side)
            for r in records]
    progress = dict(total=len(jobs), desc="prepare", unit="img", mininterval=1.0)
    if workers > 0:
        with ProcessPoolExecutor(workers) as pool:
            for _ in tqdm(pool.map(_job, jobs, chunksize=32), **progress):
                pass
    else:
        for job in tqdm(jobs, **progress):
            _job(job)
    summary = {}
    for split in sorted({r.split for r in records}):
        rows = [(r.path, r.label) for r in records if r.split == split]
        write_manifest(Path(out_dir) / f"{split}.csv", rows)
        summary[split] = {"images": len(rows), "classes": len(Counter(label for _, label in rows))}
    return summary
