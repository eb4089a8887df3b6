"""Decode, crop, downscale and re-save a dataset's images; write one manifest per split."""

import csv
import hashlib
import io
import json
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image
from tqdm import tqdm

from dmlbench import atomic
from dmlbench.data.decode import Box, UnreadableImage, absent_reason, decode_image, one_line
from dmlbench.data.manifest import write_manifest
from dmlbench.data.paths import escape_problem
from dmlbench.data.records import Record
from dmlbench.errors import DmlbenchError
from dmlbench.params.sections import JPEG_QUALITY

RESTORE_FIX = "restore it from the original archive"  # a published dataset's fix; a folder of one's own has its own
# Written with prepare.skip_corrupt: true, or when the reader ignored files (a folder dataset's other files).
SKIP_REPORT = "skipped.csv"
IMAGE_STATS = "image_stats.json"  # per-channel mean/std of the prepared training images (LREC normalises by them)
# sha256 over the manifests and every prepared image's bytes: part of each run's name (pipeline/run_name.py), so
# other data (synthetic.num_classes, a folder's changed images) never trains under an earlier run's name.
DATA_DIGEST = "digest.json"


def prepared_path(record_path: str) -> str:
    """Where a record's image goes, relative to the prepared folder: always under images/.

    CUB-style record paths already start with images/, so they are kept as they are rather than nested twice
    (a bare ``images`` is a file name like any other, never the folder itself).
    """
    posix = PurePosixPath(record_path)
    return str(posix if posix.parts[:1] == ("images",) and len(posix.parts) > 1 else PurePosixPath("images") / posix)


def _downscaled(image: Image.Image, max_side: int | None) -> Image.Image:
    """Longer side <= max_side, aspect kept, never upscaled."""
    if max_side is None or max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC)


def _save(image: Image.Image, source: Path, target: Path, quality: int) -> str:
    """Write ``image`` as JPEG to ``target`` atomically, returning the sha256 of its bytes; a file-system failure
    stops prepare (not skippable)."""
    try:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        with atomic.atomic_path(target) as tmp:
            tmp.write_bytes(buffer.getvalue())
        return hashlib.sha256(buffer.getvalue()).hexdigest()
    except OSError as exc:
        if exc.errno is not None:  # the disk or the folder, not the image: skipping would not help
            raise DmlbenchError(f"cannot write {target} ({one_line(exc)}): free disk space or fix the "
                                f"permissions of its folder, then run prepare again") from None
        # No errno: the JPEG encoder refused the image itself (e.g. a side over 65,500 pixels).
        raise UnreadableImage(f"image {source} cannot be re-saved as JPEG ({one_line(exc)})",
                              "downscale it or set prepare.max_side") from None


def prepare_image(source: Path, target: Path, box: Box | None, max_side: int | None,
                  quality: int = JPEG_QUALITY) -> str:
    """Upright 8-bit RGB (data.decode), cropped to ``box`` (stored pixels) when given, longer side <= ``max_side``
    (never upscaled), saved as JPEG; returns the sha256 of the written file."""
    image = decode_image(source, box)
    return _save(_downscaled(image, max_side), source, target, quality)


def _job(args: tuple) -> tuple[str, str | None] | str:
    """Prepare one image: the sha256 of the written file, or (reason, its own fix or None) when it is unreadable.

    Returned rather than raised, so the pool can go on with the other images when they are skipped.
    """
    try:
        return prepare_image(*args)
    except UnreadableImage as exc:
        return exc.reason, exc.fix


def _init_worker(max_image_pixels: int | None) -> None:
    """Give a worker process the parent's Pillow size limit (a spawned worker would start from the default)."""
    Image.MAX_IMAGE_PIXELS = max_image_pixels


def _bad(reason: str, fix: str = RESTORE_FIX) -> DmlbenchError:
    return DmlbenchError(f"{reason}: {fix}, or set prepare.skip_corrupt: true to skip and list such files")


def _run(jobs: list[tuple], workers: int, skip: bool, fix: str) -> tuple[dict[int, str], dict[int, str]]:
    """Run every job: (job index -> reason for unreadable images, job index -> sha256 of the written ones); raises
    at the first unreadable image unless ``skip``, with the problem's own fix or else ``fix``, the dataset's."""
    progress = dict(total=len(jobs), desc="prepare", unit="img", mininterval=1.0)
    if workers <= 0:
        results = map(_job, jobs)
        pool = None
    else:
        # Each job is independent and deterministic, so the pool writes exactly what the loop would.
        pool = ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(Image.MAX_IMAGE_PIXELS,))
        results = pool.map(_job, jobs, chunksize=max(1, min(64, len(jobs) // (workers * 4))))
    bad: dict[int, str] = {}
    written: dict[int, str] = {}
    try:
        for index, result in enumerate(tqdm(results, **progress)):
            if isinstance(result, str):
                written[index] = result
            elif not skip:
                raise _bad(result[0], result[1] or fix)
            else:
                bad[index] = result[0]
    except BrokenProcessPool:  # a worker was killed, most often by the kernel for lack of memory
        raise DmlbenchError(f"a prepare worker process died (out of memory?): lower prepare.workers "
                            f"(now {workers}) or set prepare.max_side, then run prepare again") from None
    finally:
        if pool is not None:  # on an error, drop the queued jobs instead of finishing them
            pool.shutdown(wait=True, cancel_futures=True)
    return bad, written


def _missing_first(jobs: list[tuple], skip: bool, fix: str) -> None:
    """Fail before any decoding when a listed file is absent (a stat per image is cheap)."""
    if skip:
        return  # the jobs report them one by one, so they are skipped and listed like corrupt files
    missing = [reason for reason in map(absent_reason, (job[0] for job in jobs)) if reason]
    if missing:
        raise _bad(f"{missing[0]} ({len(missing)} listed file(s) missing in all)", fix)


def write_skip_report(path: Path, records: list[Record], bad: dict[int, str],
                      ignored: list[tuple[str, str]] = ()) -> None:
    """The skipped images and the files the reader ignored, one `path,reason` row each, sorted by path."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "reason"])
    writer.writerows(sorted([*((records[i].path, reason) for i, reason in bad.items()), *ignored]))
    atomic.write_text(path, buffer.getvalue())


def _check_targets(records: list[Record], targets: list[str], raw_root: Path, out_dir: Path, fix: str) -> None:
    """Every image prepare writes must land inside ``out_dir``, whatever path a dataset file gave it.

    The last component is not followed: the atomic write replaces a link there instead of writing through it
    (DVC's symlink cache leaves such links in an output folder).
    """
    for record, target in zip(records, targets):
        found = escape_problem(out_dir, target, follow_last=False)
        if found:
            raise DmlbenchError(f"record {record.path!r} of {raw_root}: its prepared image {target!r} "
                                f"{found[0]} (it would be written outside {out_dir}): {fix}, and remove any "
                                f"link inside {out_dir}")


def prepare_dataset(records: list[Record], raw_root: Path, out_dir: Path, crop: bool,
                    max_side: int | None, workers: int = 0, skip_corrupt: bool = False,
                    jpeg_quality: int = JPEG_QUALITY, fix: str = RESTORE_FIX,
                    ignored: list[tuple[str, str]] = ()) -> dict:
    """Write ``out_dir``/images/... and ``out_dir``/<split>.csv; return images and classes per split.

    With ``skip_corrupt`` unreadable or missing images are left out and listed in ``out_dir``/skipped.csv, with
    the reader's ``ignored`` (path, reason) rows, which also write it alone. ``fix`` ends an image's error line
    when its problem has no fix of its own (a published dataset's is RESTORE_FIX).
    """
    if not records:
        raise DmlbenchError(f"the dataset at {raw_root} lists no image: restore its annotation files from the "
                            f"original archive")
    records = sorted(records, key=lambda r: (r.split, r.path, r.label))
    targets = [prepared_path(r.path) for r in records]
    _check_targets(records, targets, raw_root, Path(out_dir), fix)
    if len(set(targets)) != len(targets):
        raise DmlbenchError(f"{len(targets) - len(set(targets))} records of {raw_root} share an image path: "
                            f"each image must be listed once")
    if crop and any(r.box is None for r in records):
        raise DmlbenchError(f"crop requested but some records of {raw_root} have no bounding box: "
                            f"prepare uncropped")
    jobs = [(Path(raw_root) / r.path, Path(out_dir) / t, r.box if crop else None, max_side, jpeg_quality)
            for r, t in zip(records, targets)]
    _missing_first(jobs, skip_corrupt, fix)
    bad, written = _run(jobs, workers, skip_corrupt, fix)
    if skip_corrupt or ignored:
        write_skip_report(Path(out_dir) / SKIP_REPORT, records, bad, ignored)
    summary = {}
    digest = hashlib.sha256()
    for split in sorted({r.split for r in records}):
        kept = [i for i, r in enumerate(records) if r.split == split and i not in bad]
        rows = [(targets[i], records[i].label) for i in kept]
        manifest = Path(out_dir) / f"{split}.csv"
        write_manifest(manifest, rows)
        digest.update(f"{split}\n".encode() + manifest.read_bytes() + "".join(written[i] for i in kept).encode())
        summary[split] = {"images": len(rows), "classes": len({label for _, label in rows})}
    atomic.write_json(Path(out_dir) / DATA_DIGEST, {"sha256": digest.hexdigest(), "images": len(written)})
    return summary


def read_data_digest(prepared: Path) -> str:
    """The sha256 prepare wrote for the folder ``prepared`` (its manifests and images); one line when it is absent."""
    path = Path(prepared) / DATA_DIGEST
    try:
        value = json.loads(path.read_text())["sha256"]
        if not isinstance(value, str):
            raise ValueError("sha256 is not a string")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DmlbenchError(f"cannot read the data digest {path} ({type(exc).__name__}): rerun the prepare stage "
                            f"(dvc repro prepare), which writes it beside the manifests") from None
    return value


def read_skip_report(path: Path) -> list[tuple[str, str]]:
    """The (path, reason) rows of a skip report."""
    with Path(path).open(newline="", encoding="utf-8") as f:
        return [tuple(row) for row in list(csv.reader(f))[1:]]


def _pixel_sums(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.float64).reshape(-1, 3) / 255.0
    return pixels.sum(axis=0), np.square(pixels).sum(axis=0), pixels.shape[0]


def image_stats(paths: list[Path], workers: int = 0) -> dict:
    """Per-channel mean and (population) std of every pixel of ``paths``, RGB in [0, 1], as ToTensor reads them."""
    if workers <= 0:
        parts = list(map(_pixel_sums, paths))
    else:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_pixel_sums, paths, chunksize=max(1, min(64, len(paths) // (workers * 4)))))
    sums, squares = sum(p[0] for p in parts), sum(p[1] for p in parts)
    count = sum(p[2] for p in parts)
    mean = sums / count
    std = np.sqrt(np.maximum(squares / count - np.square(mean), 0.0))
    return {"mean": [round(float(m), 6) for m in mean], "std": [round(float(v), 6) for v in std],
            "images": len(paths), "pixels": int(count)}
