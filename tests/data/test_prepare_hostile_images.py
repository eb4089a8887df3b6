"""Images prepare cannot use (too large, dangling links, missing) and the JPEG quality it writes."""

import io
import multiprocessing
import re
from pathlib import Path

import pytest
import yaml
from PIL import Image

from dmlbench.data.cub import read_cub
from dmlbench.data.folder import read_folder
from dmlbench.data.prepare import SKIP_REPORT, prepare_dataset, prepared_path, read_skip_report
from dmlbench.errors import DmlbenchError
from dmlbench.params.load import build
from dmlbench.params.sections import PrepareConfig
from fake_datasets import write_fake_folder

REPO = Path(__file__).resolve().parents[2]
BIG = 200  # a 200 x 200 image: 40,000 pixels, above 2 x the limit the tests set
LIMIT = 10_000  # every other fake image has at most 2,500 pixels, so only BIG trips Pillow's check


def make_too_large(fake_cub, records, index: int = 4):
    """Replace image ``index`` by a BIG x BIG JPEG; returns its path."""
    victim = fake_cub / records[index].path
    Image.new("RGB", (BIG, BIG), (10, 200, 30)).save(victim, quality=90)
    return victim


@pytest.mark.parametrize("workers", [0, 2])
def test_too_large_image_is_one_line_naming_it(fake_cub, tmp_path, monkeypatch, workers):
    """DecompressionBombError is not an OSError: it used to escape as a traceback, from a worker too."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", LIMIT)
    records = read_cub(fake_cub, expected=None)
    victim = make_too_large(fake_cub, records)
    with pytest.raises(DmlbenchError) as err:
        prepare_dataset(records, fake_cub, tmp_path / "out", crop=False, max_side=None, workers=workers)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"image {victim} is too large to decode safely (DecompressionBombError: Image size "
                              f"({BIG * BIG} pixels) exceeds limit of {2 * LIMIT} pixels")
    assert message.endswith("downscale or remove it, or set prepare.skip_corrupt: true to skip and list such files")


@pytest.mark.parametrize("workers", [0, 2])
def test_too_large_image_is_skipped_and_listed(fake_cub, tmp_path, monkeypatch, workers):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", LIMIT)
    records = read_cub(fake_cub, expected=None)
    victim = make_too_large(fake_cub, records)
    out = tmp_path / "out"
    summary = prepare_dataset(records, fake_cub, out, crop=True, max_side=None, workers=workers, skip_corrupt=True)
    assert summary == {"test": {"images": 9, "classes": 3}, "train": {"images": 8, "classes": 3}}
    [(path, reason)] = read_skip_report(out / SKIP_REPORT)
    assert path == records[4].path and reason.startswith(f"image {victim} is too large to decode safely")
    assert not (out / prepared_path(path)).exists() and records[4].path not in (out / "train.csv").read_text()


def test_spawned_workers_get_the_parents_pixel_limit(fake_cub, tmp_path, monkeypatch):
    """Workers started fresh (spawn; forkserver is Python 3.14's default) apply the parent's limit, not Pillow's
    default: the same image is refused with workers=2 as with workers=0."""
    real_get_context = multiprocessing.get_context
    monkeypatch.setattr(multiprocessing, "get_context", lambda method=None: real_get_context(method or "spawn"))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", LIMIT)
    records = read_cub(fake_cub, expected=None)
    victim = make_too_large(fake_cub, records)
    with pytest.raises(DmlbenchError, match=re.escape(f"image {victim} is too large to decode safely")):
        prepare_dataset(records, fake_cub, tmp_path / "out", crop=False, max_side=None, workers=2)


def dangle(path):
    """Replace ``path`` by a symbolic link to a file that does not exist (inside the same folder)."""
    path.unlink()
    path.symlink_to(path.with_name("gone.jpg"))


@pytest.mark.parametrize("workers", [0, 2])
def test_broken_symlink_is_skipped_and_listed(fake_cub, tmp_path, workers):
    records = read_cub(fake_cub, expected=None)
    dangle(fake_cub / records[2].path)
    (fake_cub / records[7].path).unlink()  # plain missing, in the same run
    out = tmp_path / "out"
    prepare_dataset(read_cub(fake_cub, expected=None), fake_cub, out, crop=False, max_side=None, workers=workers,
                    skip_corrupt=True)
    assert read_skip_report(out / SKIP_REPORT) == sorted([
        (records[2].path, f"broken symbolic link {fake_cub / records[2].path} (points to "
                          f"{str(fake_cub / records[2].path.rsplit('/', 1)[0] / 'gone.jpg')!r})"),
        (records[7].path, f"missing image {fake_cub / records[7].path}")])


def test_broken_symlink_stops_prepare_naming_it(fake_cub, tmp_path):
    records = read_cub(fake_cub, expected=None)
    dangle(fake_cub / records[2].path)
    with pytest.raises(DmlbenchError, match=re.escape(f"broken symbolic link {fake_cub / records[2].path} ")) as err:
        prepare_dataset(records, fake_cub, tmp_path / "out", crop=False, max_side=None)
    assert "(1 listed file(s) missing in all): restore it from the original archive, or set " \
           "prepare.skip_corrupt: true" in str(err.value)
    assert not (tmp_path / "out").exists()  # found before any decoding


def test_broken_symlink_in_a_folder_dataset_is_not_silently_dropped(tmp_path):
    root = write_fake_folder(tmp_path / "mine")
    dangle(root / "dog/001.jpg")
    records = read_folder(root)
    assert "dog/001.jpg" in {r.path for r in records}
    prepare_dataset(records, root, tmp_path / "out", crop=False, max_side=None, skip_corrupt=True)
    [(path, reason)] = read_skip_report(tmp_path / "out" / SKIP_REPORT)
    assert path == "dog/001.jpg" and reason.startswith(f"broken symbolic link {root / 'dog/001.jpg'}")


def test_a_folder_where_an_image_should_be_is_skipped(fake_cub, tmp_path):
    records = read_cub(fake_cub, expected=None)
    (fake_cub / records[0].path).unlink()
    (fake_cub / records[0].path).mkdir()
    prepare_dataset(records, fake_cub, tmp_path / "out", crop=False, max_side=None, skip_corrupt=True)
    assert read_skip_report(tmp_path / "out" / SKIP_REPORT) == [
        (records[0].path, f"{fake_cub / records[0].path} is a directory, not an image file")]


def reencoded(source, quality: int) -> bytes:
    """What a JPEG of ``source`` at ``quality`` is, written by Pillow directly."""
    buffer = io.BytesIO()
    with Image.open(source) as image:
        image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def test_jpeg_quality_param_sets_the_written_quality(fake_cub, tmp_path):
    records = read_cub(fake_cub, expected=None)
    prepare_dataset(records, fake_cub, tmp_path / "default", crop=False, max_side=None)
    prepare_dataset(records, fake_cub, tmp_path / "q95", crop=False, max_side=None, jpeg_quality=95)
    prepare_dataset(records, fake_cub, tmp_path / "q75", crop=False, max_side=None, jpeg_quality=75)
    for r in records:
        written = {q: (tmp_path / q / prepared_path(r.path)).read_bytes() for q in ("default", "q95", "q75")}
        assert written["default"] == written["q95"] == reencoded(fake_cub / r.path, 95)  # the demo's bytes
        assert written["q75"] == reencoded(fake_cub / r.path, 75)
    with Image.open(tmp_path / "q75" / prepared_path(records[0].path)) as q75, \
            Image.open(tmp_path / "q95" / prepared_path(records[0].path)) as q95:
        assert q75.quantization[0][0] == 8 and q95.quantization[0][0] == 2  # the scaled luminance DC step


@pytest.mark.parametrize("value, message", [
    (0, "prepare.jpeg_quality must be in [1, 95], got 0"),
    (96, "prepare.jpeg_quality must be in [1, 95], got 96"),
    (100, "prepare.jpeg_quality must be in [1, 95], got 100"),
    (True, "prepare.jpeg_quality must be int, got True"),
    ("high", "prepare.jpeg_quality must be int, got 'high'")])
def test_jpeg_quality_is_validated(value, message):
    with pytest.raises(DmlbenchError, match=re.escape(f"params.yaml: {message}")):
        build(PrepareConfig, {"max_side": None, "workers": 0, "jpeg_quality": value}, "prepare")


def test_jpeg_quality_defaults_and_demo_value_are_95():
    assert build(PrepareConfig, {"max_side": None, "workers": 0}, "prepare").jpeg_quality == 95
    assert yaml.safe_load((REPO / "params.yaml").read_text())["prepare"]["jpeg_quality"] == 95
    assert build(PrepareConfig, {"max_side": None, "workers": 0, "jpeg_quality": 1}, "prepare").jpeg_quality == 1
