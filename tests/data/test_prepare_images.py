"""prepare_dataset and manifests on the tiny fake CUB."""

import re

import pytest
from PIL import Image

from dmlbench.data.cub import read_cub
from dmlbench.data.manifest import read_manifest, write_manifest
from dmlbench.data.prepare import prepare_dataset, prepared_path
from dmlbench.errors import DmlbenchError


def tree_bytes(root):
    """Relative path -> bytes of every file under root (temp files included, so leftovers show)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def sizes(out, records):
    with_sizes = {}
    for r in records:
        with Image.open(out / prepared_path(r.path)) as image:
            with_sizes[r.path] = image.size
    return with_sizes


def test_uncropped_keeps_sizes_and_writes_manifests(fake_cub, tmp_path):
    records = read_cub(fake_cub, expected=None)
    out = tmp_path / "prepared"
    summary = prepare_dataset(records, fake_cub, out, crop=False, max_side=None)
    assert summary == {"test": {"images": 9, "classes": 3}, "train": {"images": 9, "classes": 3}}
    for r in records:
        with Image.open(fake_cub / r.path) as original, Image.open(out / prepared_path(r.path)) as prepared:
            assert prepared.size == original.size and prepared.mode == "RGB"
    train = read_manifest(out / "train.csv")
    assert train == sorted((r.path, r.label) for r in records if r.split == "train")
    assert train[0] == ("images/001.Black_footed_Albatross/Black_Footed_Albatross_0001_101.jpg", 1)
    assert (out / "test.csv").read_text().splitlines()[0] == "path,label"
    assert sorted(p.name for p in out.iterdir()) == ["digest.json", "images", "test.csv", "train.csv"]


def test_crop_cuts_to_the_box(fake_cub, tmp_path):
    records = read_cub(fake_cub, expected=None)
    out = tmp_path / "prepared"
    prepare_dataset(records, fake_cub, out, crop=True, max_side=None)
    for r in records:
        x1, y1, x2, y2 = r.box
        assert sizes(out, [r])[r.path] == (x2 - x1, y2 - y1)


def test_max_side_downscales_keeping_aspect_and_never_upscales(fake_cub, tmp_path):
    records = read_cub(fake_cub, expected=None)
    prepare_dataset(records, fake_cub, tmp_path / "small", crop=False, max_side=30)
    prepare_dataset(records, fake_cub, tmp_path / "big", crop=False, max_side=1000)
    small, big = sizes(tmp_path / "small", records), sizes(tmp_path / "big", records)
    assert set(small.values()) == {(30, 20), (20, 30), (30, 30)}  # from 60x40, 40x60, 50x50
    assert set(big.values()) == {(60, 40), (40, 60), (50, 50)}


def test_workers_give_identical_files(fake_cub, tmp_path):
    records = read_cub(fake_cub, expected=None)
    prepare_dataset(records, fake_cub, tmp_path / "serial", crop=True, max_side=16, workers=0)
    prepare_dataset(list(reversed(records)), fake_cub, tmp_path / "pool", crop=True, max_side=16, workers=2)
    serial = tree_bytes(tmp_path / "serial")
    # 18 images, 2 manifests and the data digest, which the pool writes byte for byte as the loop does
    assert len(serial) == 18 + 2 + 1 and serial == tree_bytes(tmp_path / "pool")


def test_non_images_paths_are_put_under_images():
    assert prepared_path("images/001.a/b.jpg") == "images/001.a/b.jpg"
    assert prepared_path("bicycle_final/111085122871_0.JPG") == "images/bicycle_final/111085122871_0.JPG"


@pytest.mark.parametrize("workers", [0, 2])
def test_corrupt_jpeg_names_the_file(fake_cub, tmp_path, workers):
    records = read_cub(fake_cub, expected=None)
    victim = fake_cub / records[4].path
    victim.write_bytes(victim.read_bytes()[:200])  # a truncated download
    with pytest.raises(DmlbenchError, match=re.escape(f"corrupt or unreadable image {victim}")):
        prepare_dataset(records, fake_cub, tmp_path / "prepared", crop=False, max_side=None, workers=workers)


def test_manifest_errors(tmp_path):
    with pytest.raises(DmlbenchError, match="manifest .*missing.csv not found"):
        read_manifest(tmp_path / "missing.csv")
    (tmp_path / "bad.csv").write_text("file,class\na.jpg,1\n")
    with pytest.raises(DmlbenchError, match="must start with the header 'path,label'"):
        read_manifest(tmp_path / "bad.csv")
    (tmp_path / "label.csv").write_text("path,label\na.jpg,one\n")
    with pytest.raises(DmlbenchError, match=re.escape(f"malformed manifest line {tmp_path / 'label.csv'}:2")):
        read_manifest(tmp_path / "label.csv")


def test_manifest_round_trip(tmp_path):
    rows = [("images/a,b.jpg", 3), ("images/c.jpg", 10)]
    write_manifest(tmp_path / "m.csv", rows)
    assert read_manifest(tmp_path / "m.csv") == rows
    assert (tmp_path / "m.csv").read_bytes().startswith(b"path,label\n")
