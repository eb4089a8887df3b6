"""read_cub and the dataset registry on a tiny fake CUB in the original layout."""

import re
from collections import Counter

import pytest

from dmlbench.data.cub import read_cub
from dmlbench.data.prepare import SKIP_REPORT, prepare_dataset, read_skip_report
from dmlbench.data.readers import read_dataset
from dmlbench.data.records import Record
from dmlbench.errors import DmlbenchError


def test_zero_shot_split_labels_and_paths(fake_cub):
    records = read_cub(fake_cub, expected=None)
    assert len(records) == 18
    assert {r.label for r in records if r.split == "train"} == {1, 2, 3}  # first half of the classes
    assert {r.label for r in records if r.split == "test"} == {4, 5, 6}
    assert Counter(r.split for r in records) == {"train": 9, "test": 9}
    first = records[0]
    assert first.path == "images/001.Black_footed_Albatross/Black_Footed_Albatross_0001_101.jpg"
    assert (fake_cub / first.path).is_file()
    assert all("\\" not in r.path for r in records)


def test_boxes_become_rounded_corners(fake_cub):
    # Image 1 is 60x40 with box x=3.4, y=3.6, w=30.3, h=13.33 -> (3, 4, 34, 17).
    assert read_cub(fake_cub, expected=None)[0].box == (3, 4, 34, 17)


def test_expected_counts_pass_and_fail(fake_cub):
    assert len(read_cub(fake_cub, expected=(9, 9))) == 18
    with pytest.raises(DmlbenchError, match=re.escape("expected 5864 train / 5924 test images")) as err:
        read_cub(fake_cub)
    assert "found 9 / 9" in str(err.value)


def test_odd_class_count_puts_the_smaller_half_in_train(tmp_path, make_fake_cub):
    records = read_cub(make_fake_cub(tmp_path / "cub", num_classes=5), expected=None)
    assert {r.label for r in records if r.split == "train"} == {1, 2}


@pytest.mark.parametrize("name", ["images.txt", "image_class_labels.txt", "bounding_boxes.txt",
                                  "classes.txt", "train_test_split.txt"])
def test_missing_annotation_file_names_it_and_the_layout(fake_cub, name):
    (fake_cub / name).unlink()
    with pytest.raises(DmlbenchError) as err:
        read_cub(fake_cub, expected=None)
    message = str(err.value)
    assert f"missing annotation file {fake_cub / name}" in message
    for part in ("images/", "images.txt", "image_class_labels.txt", "bounding_boxes.txt", "classes.txt",
                 "train_test_split.txt"):
        assert part in message
    assert "\n" not in message


def test_missing_root_and_missing_images_folder(tmp_path, fake_cub):
    with pytest.raises(DmlbenchError, match="dataset folder .*nowhere not found: expected layout"):
        read_cub(tmp_path / "nowhere", expected=None)
    for image in (fake_cub / "images").rglob("*.jpg"):
        image.unlink()
    for folder in (fake_cub / "images").iterdir():
        folder.rmdir()
    (fake_cub / "images").rmdir()
    with pytest.raises(DmlbenchError, match="missing image folder .*images: expected layout"):
        read_cub(fake_cub, expected=None)


def test_missing_image_is_for_prepare_to_report_or_skip(fake_cub, tmp_path):
    """The reader does not stat images, so prepare.skip_corrupt can skip a missing one like any other."""
    victim = fake_cub / "images/004.Groove_billed_Ani/Groove_Billed_Ani_0002_111.jpg"
    victim.unlink()
    records = read_cub(fake_cub, expected=None)
    assert len(records) == 18
    with pytest.raises(DmlbenchError, match=re.escape(f"missing image {victim} (1 listed file(s) missing in all)")):
        prepare_dataset(records, fake_cub, tmp_path / "out", crop=False, max_side=None)
    prepare_dataset(records, fake_cub, tmp_path / "out", crop=False, max_side=None, skip_corrupt=True)
    assert read_skip_report(tmp_path / "out" / SKIP_REPORT) == [
        ("images/004.Groove_billed_Ani/Groove_Billed_Ani_0002_111.jpg", f"missing image {victim}")]


@pytest.mark.parametrize("name, line", [("bounding_boxes.txt", "3 1.0 2.0 3.0"),
                                        ("bounding_boxes.txt", "3 1.0 2.0 x 4.0"),
                                        ("image_class_labels.txt", "3 three"),
                                        ("images.txt", "3")])
def test_malformed_line_names_file_and_line(fake_cub, name, line):
    path = fake_cub / name
    lines = path.read_text().splitlines()
    lines[2] = line
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DmlbenchError, match=re.escape(f"malformed line {path}:3: {line!r}")):
        read_cub(fake_cub, expected=None)


def test_duplicate_id_and_empty_box_are_rejected(fake_cub):
    labels = fake_cub / "image_class_labels.txt"
    labels.write_text(labels.read_text() + "18 6\n")
    with pytest.raises(DmlbenchError, match=re.escape(f"duplicate id 18 at {labels}:19")):
        read_cub(fake_cub, expected=None)
    labels.write_text("".join(labels.read_text().splitlines(keepends=True)[:-1]))
    boxes = fake_cub / "bounding_boxes.txt"
    boxes.write_text(boxes.read_text().replace("1 3.4 3.6 30.3", "1 3.4 3.6 0.0", 1))
    with pytest.raises(DmlbenchError, match="image id 1 has an empty box"):
        read_cub(fake_cub, expected=None)


def test_registry(fake_cub):
    assert read_dataset("synthetic", fake_cub) == read_cub(fake_cub, expected=None)
    assert isinstance(read_dataset("synthetic", fake_cub)[0], Record)
    with pytest.raises(DmlbenchError, match="expected 5864 train / 5924 test"):
        read_dataset("cub", fake_cub)
    with pytest.raises(DmlbenchError, match=re.escape("unknown dataset 'imagenet' (choices: car, cub, folder, "
                                                      "isc, sop, synthetic)")):
        read_dataset("imagenet", fake_cub)
