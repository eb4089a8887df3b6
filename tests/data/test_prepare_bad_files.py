"""Missing and corrupt images in prepare: stop naming the file, or skip and list them (prepare.skip_corrupt)."""

import re

import pytest

from dmlbench.data.cars import read_cars
from dmlbench.data.inshop import read_inshop
from dmlbench.data.prepare import SKIP_REPORT, prepare_dataset, prepared_path, read_skip_report
from dmlbench.data.sop import read_sop
from dmlbench.errors import DmlbenchError
from fake_datasets import write_fake_cars, write_fake_inshop, write_fake_sop


def truncate(path):
    path.write_bytes(path.read_bytes()[:200])  # a broken download


@pytest.mark.parametrize("workers", [0, 2])
def test_corrupt_image_stops_prepare_naming_it(tmp_path, workers):
    root = write_fake_sop(tmp_path / "sop")
    records = read_sop(root, expected=None)
    victim = root / records[3].path
    truncate(victim)
    with pytest.raises(DmlbenchError, match=re.escape(f"corrupt or unreadable image {victim}")) as err:
        prepare_dataset(records, root, tmp_path / "out", crop=False, max_side=None, workers=workers)
    assert "prepare.skip_corrupt: true" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out/train.csv").exists()  # no manifest claims a partial folder


def test_missing_image_stops_before_any_decoding(tmp_path):
    root = write_fake_inshop(tmp_path / "isc")
    records = read_inshop(root, expected=None)
    victim = root / records[5].path
    victim.unlink()
    with pytest.raises(DmlbenchError, match=re.escape(f"missing image {victim} (1 listed file(s) missing in all)")):
        prepare_dataset(records, root, tmp_path / "out", crop=False, max_side=None)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("workers", [0, 2])
def test_skip_corrupt_skips_counts_and_lists(tmp_path, workers):
    root = write_fake_cars(tmp_path / "car")
    records = read_cars(root, expected=None)
    truncate(root / "car_ims/000002.jpg")
    (root / "car_ims/000009.jpg").unlink()
    out = tmp_path / "out"
    summary = prepare_dataset(records, root, out, crop=True, max_side=None, workers=workers, skip_corrupt=True)
    assert summary == {"test": {"images": 5, "classes": 2}, "train": {"images": 5, "classes": 2}}
    report = read_skip_report(out / SKIP_REPORT)
    assert [path for path, _ in report] == ["car_ims/000002.jpg", "car_ims/000009.jpg"]
    assert report[0][1].startswith("corrupt or unreadable image") and report[1][1].startswith("missing image")
    listed = (out / "train.csv").read_text() + (out / "test.csv").read_text()
    assert "000002" not in listed and "000009" not in listed and "000001" in listed


def test_clean_run_with_skip_corrupt_writes_an_empty_report(tmp_path):
    root = write_fake_sop(tmp_path / "sop")
    records = read_sop(root, expected=None)
    prepare_dataset(records, root, tmp_path / "out", crop=False, max_side=None, skip_corrupt=True)
    assert read_skip_report(tmp_path / "out" / SKIP_REPORT) == []


def test_images_prepared_before_a_failure_are_kept(tmp_path):
    root = write_fake_sop(tmp_path / "sop")
    records = sorted(read_sop(root, expected=None), key=lambda r: (r.split, r.path))
    truncate(root / records[-1].path)  # the last job fails, after all others were written
    with pytest.raises(DmlbenchError):
        prepare_dataset(records, root, tmp_path / "out", crop=False, max_side=None)
    written = [r for r in records if (tmp_path / "out" / prepared_path(r.path)).is_file()]
    assert len(written) == len(records) - 1
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_query_and_gallery_manifests(tmp_path):
    root = write_fake_inshop(tmp_path / "isc")
    summary = prepare_dataset(read_inshop(root, expected=None), root, tmp_path / "out", crop=False, max_side=32)
    assert summary == {"gallery": {"images": 6, "classes": 3}, "query": {"images": 6, "classes": 3},
                       "train": {"images": 12, "classes": 3}}
    assert (tmp_path / "out/query.csv").read_text().splitlines()[1].startswith("images/Img/img/")
