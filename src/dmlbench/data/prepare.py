"""Decode, crop, downscale and re-save a dataset's images; write one manifest per split."""

import csv
import io
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path, PurePosixPath

from PIL import Image
from tqdm import tqdm

from dmlbench import atomic
from dmlbench.data.manifest import write_manifest
from dmlbench.data.records import Record
from dmlbench.errors import DmlbenchError

JPEG_QUALITY = 95
SKIP_REPORT = "skipped.csv"  # written only with prepare.skip_corrupt: true
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


class UnreadableImage(DmlbenchError):
    """A listed image that is missing, truncated or not an image: skippable with prepare.skip_corrupt."""


def prepare_image(source: Path, target: Path, box: Box | None, max_side: int | None) -> None:
    """RGB, cropped to ``box`` when given, longer side <= ``max_side`` (never upscaled), saved as JPEG."""
    try:
        with Image.open(source) as image:
            image = image.convert("RGB")  # forces the full decode, so truncated files fail here
    except FileNotFoundError:
        raise UnreadableImage(f"missing image {source}") from None
    except (OSError, SyntaxError, ValueError) as exc:  # PIL's errors for truncated and unidentified files
        raise UnreadableImage(f"corrupt or unreadable image {source} ({exc})") from None
    if box is not None:
        image = image.crop(_clamped(box, image.size, source))
    image = _downscaled(image, max_side)
    with atomic.atomic_path(target) as tmp:
        image.save(tmp, format="JPEG", quality=JPEG_QUALITY)


def _job(args: tuple) -> str | None:
    """Prepare one image; the reason it is unreadable, or None when written."""
    try:
        prepare_image(*args)
    except UnreadableImage as exc:
        return str(exc)
    return None


def _bad(reason: str) -> DmlbenchError:
    return DmlbenchError(f"{reason}: restore it from the original archive, or set prepare.skip_corrupt: true "
                         f"to skip and list such files")


def _run(jobs: list[tuple], workers: int, skip: bool) -> dict[int, str]:
    """Run every job; job index -> reason for unreadable images (raises at the first unless ``skip``)."""
    progress = dict(total=len(jobs), desc="prepare", unit="img", mininterval=1.0)
    if workers <= 0:
        results = map(_job, jobs)
        pool = None
    else:
        # Each job is independent and deterministic, so the pool writes exactly what the loop would.
        pool = ProcessPoolExecutor(workers)
        results = pool.map(_job, jobs, chunksize=max(1, min(64, len(jobs) // (workers * 4))))
    bad: dict[int, str] = {}
    try:
        for index, reason in enumerate(tqdm(results, **progress)):
            if reason is not None and not skip:
                raise _bad(reason)
            if reason is not None:
                bad[index] = reason
    finally:
        if pool is not None:  # on an error, drop the queued jobs instead of finishing them
            pool.shutdown(wait=True, cancel_futures=True)
    return bad


def _missing_first(jobs: list[tuple], skip: bool) -> None:
    """Fail before any decoding when a listed file is absent (a stat per image is cheap)."""
    if skip:
        return  # the jobs report them one by one, so they are skipped and listed like corrupt files
    missing = [job[0] for job in jobs if not job[0].is_file()]
    if missing:
        raise _bad(f"missing image {missing[0]} ({len(missing)} listed file(s) missing in all)")


def write_skip_report(path: Path, records: list[Record], bad: dict[int, str]) -> None:
    """The skipped images, one `path,reason` row each, in the prepared folder."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "reason"])
    writer.writerows(sorted((records[i].path, reason) for i, reason in bad.items()))
    atomic.write_text(path, buffer.getvalue())


def prepare_dataset(records: list[Record], raw_root: Path, out_dir: Path, crop: bool,
                    max_side: int | None, workers: int = 0, skip_corrupt: bool = False) -> dict:
    """Write ``out_dir``/images/... and ``out_dir``/<split>.csv; return images and classes per split.

    With ``skip_corrupt`` unreadable or missing images are left out and listed in ``out_dir``/skipped.csv.
    """
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
    _missing_first(jobs, skip_corrupt)
    bad = _run(jobs, workers, skip_corrupt)
    if skip_corrupt:
        write_skip_report(Path(out_dir) / SKIP_REPORT, records, bad)
    summary = {}
    for split in sorted({r.split for r in records}):
        rows = [(t, r.label) for i, (r, t) in enumerate(zip(records, targets)) if r.split == split and i not in bad]
        write_manifest(Path(out_dir) / f"{split}.csv", rows)
        summary[split] = {"images": len(rows), "classes": len({label for _, label in rows})}
    return summary


def read_skip_report(path: Path) -> list[tuple[str, str]]:
    """The (path, reason) rows of a skip report."""
    with Path(path).open(newline="", encoding="utf-8") as f:
        return [tuple(row) for row in list(csv.reader(f))[1:]]
