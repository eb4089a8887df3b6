"""Decode, crop, downscale and re-save a dataset's images; write one manifest per split."""

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path, PurePosixPath

from PIL import Image
from tqdm import tqdm

from dmlbench import atomic
from dmlbench.data.manifest import write_manifest
from dmlbench.data.records import Record
from dmlbench.errors import DmlbenchError

JPEG_QUALITY = 95
Box = tuple[int, int, int, int]


def prepared_path(record_path: str) -> str:
    """Where a record's image goes, relative to the prepared folder: always under images/.

    CUB-style record paths already start with images/, so they are kept as they are rather than nested twice.
    """
    posix = PurePosixPath(record_path)
    return str(posix if posix.parts[:1] == ("images",) else PurePosixPath("images") / posix)


def _clamped(box: Box, size: tuple[int, int], source: Path) -> Box:
    """The box inside the image: rounded annotations may overshoot a border by a pixel."""
    x1, y1, x2, y2 = max(0, box[0]), max(0, box[1]), min(size[0], box[2]), min(size[1], box[3])
    if x2 <= x1 or y2 <= y1:
        raise DmlbenchError(f"box {box} of {source} lies outside the {size[0]}x{size[1]} image: fix its "
                            f"bounding-box annotation or prepare uncropped")
    return x1, y1, x2, y2


def _downscaled(image: Image.Image, max_side: int | None) -> Image.Image:
    """Longer side <= max_side, aspect kept, never upscaled."""
    if max_side is None or max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC)


def prepare_image(source: Path, target: Path, box: Box | None, max_side: int | None) -> None:
    """RGB, cropped to ``box`` when given, longer side <= ``max_side`` (never upscaled), saved as JPEG."""
    try:
        with Image.open(source) as image:
            image = image.convert("RGB")  # forces the full decode, so truncated files fail here
    except (OSError, SyntaxError, ValueError) as exc:  # PIL's errors for truncated and unidentified files
        raise DmlbenchError(f"corrupt or unreadable image {source} ({exc}): replace it from the original "
                            f"archive") from None
    if box is not None:
        image = image.crop(_clamped(box, image.size, source))
    image = _downscaled(image, max_side)
    with atomic.atomic_path(target) as tmp:
        image.save(tmp, format="JPEG", quality=JPEG_QUALITY)


def _job(args: tuple) -> None:
    prepare_image(*args)


def _run(jobs: list[tuple], workers: int) -> None:
    progress = dict(total=len(jobs), desc="prepare", unit="img", mininterval=1.0)
    if workers <= 0:
        for job in tqdm(jobs, **progress):
            _job(job)
        return
    # Each job is independent and deterministic, so the pool writes exactly what the loop would.
    chunksize = max(1, min(64, len(jobs) // (workers * 4)))
    with ProcessPoolExecutor(workers) as pool:
        for _ in tqdm(pool.map(_job, jobs, chunksize=chunksize), **progress):
            pass


def prepare_dataset(records: list[Record], raw_root: Path, out_dir: Path, crop: bool,
                    max_side: int | None, workers: int = 0) -> dict:
    """Write ``out_dir``/images/... and ``out_dir``/<split>.csv; return images and classes per split."""
    records = sorted(records, key=lambda r: (r.split, r.path, r.label))
    targets = [prepared_path(r.path) for r in records]
    if len(set(targets)) != len(targets):
        raise DmlbenchError(f"{len(targets) - len(set(targets))} records of {raw_root} share an image path: "
                            f"each image must be listed once")
    if crop and any(r.box is None for r in records):
        raise DmlbenchError(f"crop requested but some records of {raw_root} have no bounding box: "
                            f"prepare uncropped")
    jobs = [(Path(raw_root) / r.path, Path(out_dir) / t, r.box if crop else None, max_side)
            for r, t in zip(records, targets)]
    _run(jobs, workers)
    summary = {}
    for split in sorted({r.split for r in records}):
        rows = [(t, r.label) for r, t in zip(records, targets) if r.split == split]
        write_manifest(Path(out_dir) / f"{split}.csv", rows)
        summary[split] = {"images": len(rows), "classes": len({label for _, label in rows})}
    return summary
