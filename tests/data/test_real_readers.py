"""The CARS196, SOP, In-shop and folder readers on tiny fakes in each published layout."""

import re
from collections import Counter

import pytest

from dmlbench.data.cars import read_cars
from dmlbench.data.folder import read_folder
from dmlbench.data.inshop import read_inshop
from dmlbench.data.readers import read_dataset
from dmlbench.data.sop import read_sop
from dmlbench.errors import DmlbenchError
from fake_datasets import (fake_car_box, write_fake_cars, write_fake_cars_devkit, write_fake_folder,
                           write_fake_inshop, write_fake_sop)

CAR_SMALL = {"train": 6, "test": 6, "train classes": 2, "test classes": 2}


def one_line(err) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("writer", [write_fake_cars, write_fake_cars_devkit,
                                    lambda root: write_fake_cars_devkit(root, test_in_devkit=True)])
def test_cars_layouts_give_the_zero_shot_split_by_class(tmp_path, writer):
    records = read_cars(writer(tmp_path / "car"), expected=CAR_SMALL)
    assert {r.label for r in records if r.split == "train"} == {1, 2}  # the official test flag is ignored
    assert {r.label for r in records if r.split == "test"} == {3, 4}
    assert all((tmp_path / "car" / r.path).is_file() and r.box is not None for r in records)


def test_both_cars_layouts_agree_on_boxes_and_labels(tmp_path):
    annos = read_cars(write_fake_cars(tmp_path / "a"), expected=None)
    devkit = read_cars(write_fake_cars_devkit(tmp_path / "b"), expected=None)
    assert sorted((r.label, r.box, r.split) for r in annos) == sorted((r.label, r.box, r.split) for r in devkit)
    assert annos[0].path == "car_ims/000001.jpg" and annos[0].box == fake_car_box(1, (40, 60))


def test_cars_published_counts_are_enforced(tmp_path):
    root = write_fake_cars(tmp_path / "car")
    with pytest.raises(DmlbenchError) as err:
        read_cars(root)
    assert "expected train 8,054, test 8,131, train classes 98, test classes 98" in one_line(err)
    assert "found train 6, test 6, train classes 2, test classes 2" in one_line(err)
    assert "prepare.check_counts: false" in one_line(err)


def test_cars_missing_and_unreadable_mat_name_the_file(tmp_path):
    root = write_fake_cars(tmp_path / "car")
    (root / "cars_annos.mat").write_bytes(b"MATLAB 5.0 MAT-file, truncated")
    with pytest.raises(DmlbenchError, match=re.escape(f"unreadable annotation file {root / 'cars_annos.mat'}")) as err:
        read_cars(root, expected=None)
    one_line(err)
    kit = write_fake_cars_devkit(tmp_path / "kit")
    (kit / "cars_test_annos_withlabels.mat").unlink()
    missing = kit / "cars_test_annos_withlabels.mat"
    with pytest.raises(DmlbenchError, match=re.escape(f"missing annotation file {missing}")):
        read_cars(kit, expected=None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DmlbenchError, match="missing annotation file .*cars_annos.mat: expected layout"):
        read_cars(tmp_path / "empty", expected=None)


def test_sop_labels_splits_and_counts(tmp_path):
    root = write_fake_sop(tmp_path / "sop")
    records = read_sop(root, expected={"train": 9, "test": 9, "train classes": 3, "test classes": 3})
    assert {r.label for r in records if r.split == "train"} == {1, 2, 3}
    assert {r.label for r in records if r.split == "test"} == {4, 5, 6}
    assert records[0].path == "bicycle_final/111085122001_0.JPG" and records[0].box is None
    with pytest.raises(DmlbenchError, match="expected train 59,551, test 60,502, train classes 11,318"):
        read_sop(root)


def test_sop_wrong_header_missing_list_and_bad_line(tmp_path):
    root = write_fake_sop(tmp_path / "sop")
    listing = root / "Ebay_test.txt"
    lines = listing.read_text().splitlines()
    listing.write_text("\n".join(["image_id class_id path", *lines[1:]]))
    with pytest.raises(DmlbenchError, match=re.escape(f"{listing} must start with the header 'image_id class_id "
                                                      f"super_class_id path', found 'image_id class_id path'")):
        read_sop(root, expected=None)
    listing.write_text("\n".join([lines[0], "10 4 2", *lines[2:]]))
    with pytest.raises(DmlbenchError, match=re.escape(f"malformed line {listing}:2: '10 4 2'")):
        read_sop(root, expected=None)
    listing.unlink()
    with pytest.raises(DmlbenchError, match=re.escape(f"missing annotation file {listing}: expected layout")):
        read_sop(root, expected=None)


def test_sop_class_in_both_lists_is_not_zero_shot(tmp_path):
    root = write_fake_sop(tmp_path / "sop")
    test = root / "Ebay_test.txt"
    test.write_text(test.read_text() + "99 1 1 bicycle_final/111085122001_0.JPG\n")
    with pytest.raises(DmlbenchError, match=r"class ids \[1\] appear in both"):
        read_sop(root, expected=None)


@pytest.mark.parametrize("flat", [False, True])
def test_inshop_roles_labels_and_image_folder(tmp_path, flat):
    root = write_fake_inshop(tmp_path / "isc", flat=flat)
    records = read_inshop(root, expected={"train": 12, "query": 6, "gallery": 6, "train classes": 3})
    assert Counter(r.split for r in records) == {"train": 12, "query": 6, "gallery": 6}
    assert {r.label for r in records if r.split == "train"} == {1, 2, 3}
    query = {r.label for r in records if r.split == "query"}
    assert query == {r.label for r in records if r.split == "gallery"} == {4, 5, 6}
    assert records[0].path == ("" if flat else "Img/") + "img/MEN/Denim/id_00000001/01_1_front.jpg"
    assert all((root / r.path).is_file() for r in records)
    with pytest.raises(DmlbenchError, match="expected train 25,882, query 14,218, gallery 12,612"):
        read_inshop(root)


def test_inshop_broken_layouts(tmp_path):
    root = write_fake_inshop(tmp_path / "isc")
    listing = root / "Eval/list_eval_partition.txt"
    lines = listing.read_text().splitlines()
    listing.write_text("\n".join([lines[0], "image_name item_id", *lines[2:]]))
    with pytest.raises(DmlbenchError, match=re.escape(f"{listing}: line 2 must be the header")):
        read_inshop(root, expected=None)
    listing.write_text("\n".join(["99", *lines[1:]]))
    with pytest.raises(DmlbenchError, match="line 1 says '99' images but 24 are listed"):
        read_inshop(root, expected=None)
    listing.write_text("\n".join([*lines[:5], lines[5].replace("train", "val"), *lines[6:]]))
    with pytest.raises(DmlbenchError, match=re.escape(f"malformed line {listing}:6")):
        read_inshop(root, expected=None)
    listing.write_text("\n".join([*lines[:5], lines[5].replace("id_00000001", "item1"), *lines[6:]]))
    with pytest.raises(DmlbenchError, match="item id 'item1' is not of the form id_<digits>"):
        read_inshop(root, expected=None)
    listing.unlink()
    with pytest.raises(DmlbenchError, match="missing annotation file .*Eval/list_eval_partition.txt"):
        read_inshop(root, expected=None)


def test_folder_halves_and_labels_by_sorted_name(tmp_path):
    root = write_fake_folder(tmp_path / "mine", classes=("fox", "cat", "emu", "dog"))
    records = read_folder(root)
    assert {(r.path.split("/")[0], r.label, r.split) for r in records} == {
        ("cat", 0, "train"), ("dog", 1, "train"), ("emu", 2, "test"), ("fox", 3, "test")}
    assert len(records) == 12  # notes.txt is not an image


def test_folder_split_file(tmp_path):
    root = write_fake_folder(tmp_path / "mine", splits={"cat": "test", "dog": "train", "emu": "train",
                                                          "fox": "test"})
    records = read_folder(root)
    assert {r.label for r in records if r.split == "train"} == {1, 2}
    (root / "split.txt").write_text("cat test\ndog train\nemu train\n")
    with pytest.raises(DmlbenchError, match=r"must list exactly the class folders: unknown \[\], unlisted \['fox'\]"):
        read_folder(root)
    (root / "split.txt").write_text("cat test\ndog train\nemu train\nfox valid\n")
    with pytest.raises(DmlbenchError, match="malformed or repeated line .*split.txt:4: 'fox valid'"):
        read_folder(root)
    (root / "split.txt").write_text("cat test\ndog test\nemu test\nfox test\n")
    with pytest.raises(DmlbenchError, match="no class is assigned to train"):
        read_folder(root)


def test_folder_rejects_empty_class_and_single_class(tmp_path):
    root = write_fake_folder(tmp_path / "mine")
    (root / "empty").mkdir()
    with pytest.raises(DmlbenchError, match="class folder .*empty holds no image"):
        read_folder(root)
    single = write_fake_folder(tmp_path / "one", classes=("cat",))
    with pytest.raises(DmlbenchError, match="has 1 class folder"):
        read_folder(single)


def test_relaxed_counts_warn_loudly(tmp_path, capsys):
    root = write_fake_cars(tmp_path / "car")
    assert len(read_dataset("car", root, check_counts=False)) == 12
    err = capsys.readouterr().err
    assert err.startswith("dmlbench: warning: prepare.check_counts is false: car split counts NOT checked")
    assert "train 6" in err
    with pytest.raises(DmlbenchError, match="expected train 8,054"):
        read_dataset("car", root)
    read_dataset("folder", write_fake_folder(tmp_path / "mine"), check_counts=False)
    assert capsys.readouterr().err == ""  # no published counts: nothing was relaxed


def test_inshop_superscript_digits_are_not_numbers(tmp_path):
    """str.isdigit() accepts '²' but int() refuses it: that used to be a traceback, in both numeric fields."""
    root = write_fake_inshop(tmp_path / "isc")
    listing = root / "Eval/list_eval_partition.txt"
    lines = listing.read_text().splitlines()
    listing.write_text("\n".join(["²", *lines[1:]]))
    with pytest.raises(DmlbenchError, match="line 1 says '²' images"):
        read_inshop(root, expected=None)
    listing.write_text("\n".join([*lines[:2], lines[2].replace("id_00000001", "id_²"), *lines[3:]]))
    with pytest.raises(DmlbenchError, match="item id 'id_²' is not of the form id_<digits>"):
        read_inshop(root, expected=None)


@pytest.mark.parametrize("layout", ["sop", "isc", "folder"])
def test_lists_that_are_not_utf8_text_are_one_line(tmp_path, layout):
    writer, listing = {"sop": (write_fake_sop, "Ebay_test.txt"),
                       "isc": (write_fake_inshop, "Eval/list_eval_partition.txt"),
                       "folder": (write_fake_folder, "split.txt")}[layout]
    root = writer(tmp_path / layout)
    (root / listing).write_bytes(b"\xff\xd8\xff\xe0 a JPEG saved under the list's name")
    reader = {"sop": read_sop, "isc": read_inshop, "folder": read_folder}[layout]
    with pytest.raises(DmlbenchError, match=re.escape(f"{root / listing} is not UTF-8 text")) as err:
        reader(root, expected=None)
    one_line(err)
