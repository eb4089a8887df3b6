"""Prepare throughput (images/s) on generated 500x375 JPEGs: workers=0 vs workers=2, in the same run.

Usage: python benchmarks/prepare_speed.py [--images 2000] [--workers 2] [--max-side 96]
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from dmlbench.data.prepare import prepare_dataset
from dmlbench.data.records import Record

SIZE = (500, 375)  # a typical CUB / CARS photo


def write_images(root: Path, count: int) -> list[Record]:
    """Smooth-noise JPEGs (photo-like file sizes, unlike white noise), one class per 10 images."""
    rng = np.random.default_rng(0)
    records = []
    for i in range(count):
        small = rng.integers(0, 256, (SIZE[1] // 25, SIZE[0] // 25, 3), dtype=np.uint8)
        image = Image.fromarray(small, "RGB").resize(SIZE, Image.Resampling.BICUBIC)
        path = f"class{i // 10:03d}/{i:05d}.jpg"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        image.save(root / path, quality=90)
        records.append(Record(path, i // 10, "train", (20, 20, 400, 300)))
    return records


def rate(records: list[Record], raw: Path, out: Path, workers: int, max_side: int) -> float:
    start = time.perf_counter()
    prepare_dataset(records, raw, out, crop=True, max_side=max_side, workers=workers)
    return len(records) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-side", type=int, default=96)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw"
        records = write_images(raw, args.images)
        serial = rate(records, raw, Path(tmp) / "serial", 0, args.max_side)
        pooled = rate(records, raw, Path(tmp) / "pooled", args.workers, args.max_side)
    print(f"prepare: {args.images} images {SIZE[0]}x{SIZE[1]}, crop + max_side {args.max_side}")
    print(f"workers=0: {serial:.1f} img/s")
    print(f"workers={args.workers}: {pooled:.1f} img/s")
    print(f"ratio: {pooled / serial:.2f}x")


if __name__ == "__main__":
    main()
