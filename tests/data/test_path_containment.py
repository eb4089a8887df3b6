"""No dataset file can make prepare read or write outside its folders: absolute paths, '..', escaping links.

Each reader gets one hostile entry of each kind in its own published layout; every one must stop with one
line naming the dataset file, the entry and the fix, before prepare touches anything.
"""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from dmlbench.data.cars import read_cars
from dmlbench.data.cub import read_cub
from dmlbench.data.folder import read_folder
from dmlbench.data.inshop import read_inshop
from dmlbench.data.paths import contained_path, escape_problem
from dmlbench.data.prepare import prepare_dataset
from dmlbench.data.records import Record
from dmlbench.data.sop import read_sop
from dmlbench.errors import DmlbenchError
from fake_datasets import (write_fake_cars, write_fake_cars_devkit, write_fake_cub, write_fake_folder,
                           write_fake_inshop, write_fake_sop, write_jpeg)

PROBLEMS = {"absolute": "is absolute", "dotdot": "leaves the dataset folder through '..'",
            "link": "resolves through a symbolic link"}
FIXES = {"absolute": "restore the file from the original archive", "dotdot": "restore the file from the original "
         "archive", "link": "replace the link by a copy of the image, or link the whole dataset folder instead"}


def edit_line(path: Path, number: int, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` on line ``number`` (1-based) of a text list."""
    lines = path.read_text().splitlines()
    assert old in lines[number - 1]
    lines[number - 1] = lines[number - 1].replace(old, new)
    path.write_text("\n".join(lines) + "\n")


def edit_mat(path: Path, index: int, field: str, value: str) -> None:
    """Set ``field`` of annotation ``index`` (0-based) in a .mat annotation file, keeping its structure."""
    mat = scipy.io.loadmat(path)
    mat["annotations"][0, index][field] = np.array([value])
    scipy.io.savemat(path, {k: v for k, v in mat.items() if not k.startswith("__")})


def link_outside(path: Path, outside: Path) -> None:
    """Move ``path`` (file or folder) to ``outside`` and leave a symbolic link to it in its place."""
    outside.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(path, outside)
    path.symlink_to(outside)


def hostile_cub(root: Path, kind: str, victim: Path):
    """images.txt line 3 names the victim (or its image is a link to a file outside)."""
    write_fake_cub(root)
    listing = root / "images.txt"
    relative = listing.read_text().splitlines()[2].split(maxsplit=1)[1]
    entry = {"absolute": str(victim), "dotdot": "../../outside/victim.jpg", "link": relative}[kind]
    if kind == "link":
        link_outside(root / "images" / relative, victim.parent / "moved.jpg")
    else:
        edit_line(listing, 3, relative, entry)
    return read_cub, f"{listing} (image id 3)", entry


def hostile_car(root: Path, kind: str, victim: Path):
    """cars_annos.mat annotation 3 names the victim (or car_ims/000003.jpg links outside)."""
    write_fake_cars(root)
    entry = {"absolute": str(victim), "dotdot": "car_ims/../../outside/victim.jpg",
             "link": "car_ims/000003.jpg"}[kind]
    if kind == "link":
        link_outside(root / entry, victim.parent / "moved.jpg")
    else:
        edit_mat(root / "cars_annos.mat", 2, "relative_im_path", entry)
    return read_cars, f"{root / 'cars_annos.mat'} (annotation 3)", entry


def hostile_car_devkit(root: Path, kind: str, victim: Path):
    """devkit/cars_train_annos.mat annotation 1 names the victim (or the whole cars_train/ links outside)."""
    write_fake_cars_devkit(root)
    entry = {"absolute": str(victim), "dotdot": "../../outside/victim.jpg", "link": "00001.jpg"}[kind]
    if kind == "link":
        link_outside(root / "cars_train", victim.parent / "cars_train")
    else:
        edit_mat(root / "devkit/cars_train_annos.mat", 0, "fname", entry)
    return read_cars, f"{root / 'devkit/cars_train_annos.mat'} (annotation 1)", entry


def hostile_sop(root: Path, kind: str, victim: Path):
    """Ebay_train.txt line 2 names the victim (or its image links outside)."""
    write_fake_sop(root)
    relative = "bicycle_final/111085122001_0.JPG"
    entry = {"absolute": str(victim), "dotdot": "../outside/victim.jpg", "link": relative}[kind]
    if kind == "link":
        link_outside(root / relative, victim.parent / "moved.jpg")
    else:
        edit_line(root / "Ebay_train.txt", 2, relative, entry)
    return read_sop, f"{root / 'Ebay_train.txt'}:2", entry


def hostile_isc(root: Path, kind: str, victim: Path):
    """list_eval_partition.txt line 3 names the victim (or the folder Img/img/MEN/ links outside)."""
    write_fake_inshop(root)
    listing = root / "Eval/list_eval_partition.txt"
    relative = listing.read_text().splitlines()[2].split()[0]
    entry = {"absolute": str(victim), "dotdot": "img/../../../outside/victim.jpg", "link": relative}[kind]
    if kind == "link":
        assert relative.startswith("img/MEN/")
        link_outside(root / "Img/img/MEN", victim.parent / "MEN")
    else:
        edit_line(listing, 3, relative, entry)
    return read_inshop, f"{listing}:3", entry


def hostile_folder(root: Path, kind: str, victim: Path):
    """Names come from the file system, so only links can escape: an image, or a whole class folder."""
    write_fake_folder(root)
    if kind == "link":
        link_outside(root / "cat/000.jpg", victim.parent / "moved.jpg")
    else:  # "folder link"
        link_outside(root / "cat", victim.parent / "cat")
    return read_folder, f"class folder {root / 'cat'}", "cat/000.jpg"


CASES = [(layout, kind) for layout in ("cub", "car", "car_devkit", "sop", "isc") for kind in PROBLEMS]
CASES += [("folder", "link"), ("folder", "folder link")]
INJECT = {"cub": hostile_cub, "car": hostile_car, "car_devkit": hostile_car_devkit, "sop": hostile_sop,
          "isc": hostile_isc, "folder": hostile_folder}


@pytest.fixture
def victim(tmp_path) -> Path:
    """A real image outside every dataset folder: prepare must neither read nor overwrite it."""
    path = tmp_path / "outside" / "victim.jpg"
    write_jpeg(path, seed=99)
    return path


@pytest.mark.parametrize("layout, kind", CASES)
def test_every_reader_refuses_paths_leaving_its_folder(tmp_path, victim, layout, kind):
    before = victim.read_bytes()
    reader, where, entry = INJECT[layout](tmp_path / "data" / layout, kind, victim)
    with pytest.raises(DmlbenchError) as err:
        records = reader(tmp_path / "data" / layout, expected=None)
        prepare_dataset(records, tmp_path / "data" / layout, tmp_path / "out", crop=False, max_side=None)
    message = str(err.value)
    assert "\n" not in message
    problem = "link" if "link" in kind else kind
    assert message.startswith(f"{where}: image path {entry!r} {PROBLEMS[problem]}"), message
    assert FIXES[problem] in message
    assert victim.read_bytes() == before
    assert not (tmp_path / "out").exists()  # refused while reading, before prepare wrote anything


def test_absolute_path_in_cars_annos_no_longer_overwrites_the_file(tmp_path, victim):
    """The reported bug: prepare read the named file and wrote its JPEG back onto the same path."""
    root = write_fake_cars(tmp_path / "car")
    edit_mat(root / "cars_annos.mat", 0, "relative_im_path", str(victim))
    before = victim.read_bytes()
    with pytest.raises(DmlbenchError, match=re.escape(f"image path {str(victim)!r} is absolute")):
        prepare_dataset(read_cars(root, expected=None), root, tmp_path / "out", crop=False, max_side=32)
    assert victim.read_bytes() == before


def test_links_that_stay_inside_the_root_are_fine(tmp_path):
    root = write_fake_sop(tmp_path / "sop")
    (root / "bicycle_final/111085122001_0.JPG").unlink()
    (root / "bicycle_final/111085122001_0.JPG").symlink_to(root / "chair_final/111085122002_0.JPG")
    (root / "mirror_final").symlink_to("bicycle_final")  # a relative link to a folder inside the root
    train = root / "Ebay_train.txt"
    train.write_text(train.read_text().replace("bicycle_final/111085122001_1", "mirror_final/111085122001_1"))
    records = read_sop(root, expected=None)
    assert "mirror_final/111085122001_1.JPG" in {r.path for r in records}
    summary = prepare_dataset(records, root, tmp_path / "out", crop=False, max_side=None)
    assert summary["train"]["images"] == 9


@pytest.mark.parametrize("entry, problem", [("", "is empty"), (".", "is empty"),
                                            ("a\nb.jpg", "contains a control character"),
                                            ("C:\\images\\a.jpg", "is absolute"),
                                            ("\\\\host\\share\\a.jpg", "is absolute"),
                                            ("a\\..\\..\\b.jpg", "leaves the dataset folder"),
                                            ("a/./../../b.jpg", "leaves the dataset folder")])
def test_other_hostile_spellings(tmp_path, entry, problem):
    with pytest.raises(DmlbenchError) as err:
        contained_path(tmp_path, entry, "list.txt:7")
    assert str(err.value).startswith(f"list.txt:7: image path {entry!r} {problem}")
    assert "\n" not in str(err.value)


def test_prepare_refuses_records_that_would_write_outside_its_folder(tmp_path, victim):
    """Even a record no reader checked cannot make prepare write outside ``out``."""
    root = write_fake_sop(tmp_path / "sop")
    records = read_sop(root, expected=None)
    before = victim.read_bytes()
    with pytest.raises(DmlbenchError, match=re.escape(f"record {str(victim)!r} of {root}: its prepared image "
                                                      f"{str(victim)!r} is absolute")):
        prepare_dataset([*records, Record(str(victim), 7, "test")], root, tmp_path / "out", False, None)
    assert victim.read_bytes() == before and not (tmp_path / "out").exists()


def test_prepare_refuses_a_link_inside_its_output_folder(tmp_path):
    root = write_fake_sop(tmp_path / "sop")
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "images").mkdir(parents=True)
    (out / "images/bicycle_final").symlink_to(elsewhere)
    with pytest.raises(DmlbenchError) as err:
        prepare_dataset(read_sop(root, expected=None), root, out, crop=False, max_side=None)
    assert "resolves through a symbolic link" in str(err.value) and f"outside {out}" in str(err.value)
    assert list(elsewhere.iterdir()) == []


def test_a_link_as_last_component_of_an_output_is_replaced_not_written_through(tmp_path, victim):
    """An existing link in place of an output (DVC's symlink cache) is not an escape: the rename replaces it."""
    out = tmp_path / "out"
    assert escape_problem(out, "images/a.jpg", follow_last=False) is None  # nothing exists yet
    (out / "images").mkdir(parents=True)
    (out / "images/a.jpg").symlink_to(victim)
    assert escape_problem(out, "images/a.jpg", follow_last=False) is None
    assert escape_problem(out, "images/a.jpg")[0].startswith("resolves through a symbolic link")  # a reader's view
