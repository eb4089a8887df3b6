"""A folder of one's own: what is not an image of a class is listed (one line, skipped.csv), never dropped without
a word; its errors say what fits a folder of one's own, not "restore it from the original archive"."""

import os

import pytest
from PIL import Image

from dmlbench.data.folder import IGNORED, OWN_FIX, RENAME_FIX, read_folder, scan_folder
from dmlbench.data.prepare import SKIP_REPORT, read_skip_report
from dmlbench.errors import DmlbenchError
from dmlbench.params.load import build
from dmlbench.params.sections import PrepareConfig
from dmlbench.pipeline.prepare import prepare_folder
from fake_datasets import write_fake_folder, write_jpeg

REASON = {kind: reason for kind, (_, reason) in IGNORED.items()}


def cfg(**overrides) -> PrepareConfig:
    return build(PrepareConfig, {"max_side": None, "workers": 0, **overrides}, "prepare")


def cluttered(root):
    """The fake folder (cat dog emu fox, 3 images each, a notes.txt in each) with the clutter real folders hold."""
    write_fake_folder(root)
    (root / "fox").rename(root / ".hidden_c5")  # a class hidden by a rename: 3 images that would vanish
    (root / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "README.txt").write_text("my photos\n")
    (root / "cat/._000.jpg").write_bytes(b"\0\5\26\7AppleDouble")  # macOS metadata beside a copied image
    write_jpeg(root / "dog/extra/009.jpg", 9)  # one level too deep
    return root


def test_every_ignored_entry_is_listed_with_its_reason(tmp_path):
    root = cluttered(tmp_path / "mine")
    classes, ignored = scan_folder(root)
    assert {name: len(files) for name, files in classes.items()} == {"cat": 3, "dog": 3, "emu": 3}
    assert ignored == sorted([
        (".DS_Store", REASON["hidden file"]), (".hidden_c5", REASON["hidden folder"]),
        ("README.txt", REASON["stray file"]), ("cat/._000.jpg", REASON["hidden file"]),
        ("cat/notes.txt", REASON["other type"]), ("dog/extra", REASON["subfolder"]),
        ("dog/notes.txt", REASON["other type"]), ("emu/notes.txt", REASON["other type"])])
    assert REASON["hidden folder"].endswith("rename it without the dot to make it a class")


def test_prepare_prints_one_line_and_lists_them_in_skipped_csv(tmp_path, capsys):
    root = cluttered(tmp_path / "mine")
    out = tmp_path / "out"
    summary = prepare_folder("folder", "uncropped", root, out, cfg())
    assert summary == {"test": {"images": 6, "classes": 2}, "train": {"images": 3, "classes": 1}}
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("prepare: not images")]
    assert err == [f"prepare: not images of a class, ignored in {root}: 1 hidden folder(s) (.hidden_c5), 2 hidden "
                   f"file(s) (.DS_Store, ...), 3 file(s) of other types (cat/notes.txt, ...), 1 folder(s) inside "
                   f"class folders (dog/extra), 1 file(s) beside the class folders (README.txt); listed in "
                   f"{out / SKIP_REPORT}"]
    assert read_skip_report(out / SKIP_REPORT) == scan_folder(root)[1]


def test_skip_corrupt_lists_skipped_images_and_ignored_files_together(tmp_path, capsys):
    root = write_fake_folder(tmp_path / "mine")
    (root / "cat/001.jpg").write_text("not a picture")
    out = tmp_path / "out"
    prepare_folder("folder", "uncropped", root, out, cfg(skip_corrupt=True))
    rows = read_skip_report(out / SKIP_REPORT)
    assert [path for path, _ in rows] == ["cat/001.jpg", "cat/notes.txt", "dog/notes.txt", "emu/notes.txt",
                                          "fox/notes.txt"]
    assert rows[0][1].startswith(f"corrupt or unreadable image {root / 'cat/001.jpg'} (UnidentifiedImageError")
    printed = capsys.readouterr()
    assert f"prepare: 1 missing, unreadable, too large or unusably shaped image(s) skipped, listed in " \
           f"{out / SKIP_REPORT}" in printed.err  # the four notes.txt are not counted as skipped images


def test_a_folder_without_clutter_writes_no_skip_report(tmp_path, capsys):
    root = write_fake_folder(tmp_path / "mine")
    for notes in root.glob("*/notes.txt"):
        notes.unlink()
    prepare_folder("folder", "uncropped", root, tmp_path / "out", cfg())
    assert not (tmp_path / "out" / SKIP_REPORT).exists() and "not images" not in capsys.readouterr().err


def test_a_broken_image_of_ones_own_folder_says_to_fix_the_folder(tmp_path):
    root = write_fake_folder(tmp_path / "mine")
    (root / "dog/002.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(DmlbenchError) as err:
        prepare_folder("folder", "uncropped", root, tmp_path / "out", cfg())
    assert str(err.value).startswith(f"corrupt or unreadable image {root / 'dog/002.jpg'} (")
    assert str(err.value).endswith(f"): {OWN_FIX}, or set prepare.skip_corrupt: true to skip and list such files")
    assert "archive" not in str(err.value)


def test_a_missing_image_of_ones_own_folder_says_to_fix_the_folder(tmp_path):
    root = write_fake_folder(tmp_path / "mine")
    (root / "emu/001.jpg").unlink()
    (root / "emu/001.jpg").symlink_to(root / "emu/gone.jpg")  # a link whose target was deleted
    with pytest.raises(DmlbenchError) as err:
        prepare_folder("folder", "uncropped", root, tmp_path / "out", cfg())
    assert str(err.value).startswith(f"broken symbolic link {root / 'emu/001.jpg'}")
    assert f"(1 listed file(s) missing in all): {OWN_FIX}, or set prepare.skip_corrupt" in str(err.value)


def test_a_control_character_in_a_file_name_says_to_rename_it(tmp_path):
    root = write_fake_folder(tmp_path / "mine")
    (root / "cat/000.jpg").rename(root / "cat/0\n0.jpg")
    with pytest.raises(DmlbenchError) as err:
        read_folder(root)
    assert str(err.value) == (f"class folder {root / 'cat'}: image path 'cat/0\\n0.jpg' contains a control "
                              f"character: {RENAME_FIX}")


def test_a_fifo_named_like_an_image_is_reported_not_dropped(tmp_path):
    root = write_fake_folder(tmp_path / "mine")
    os.mkfifo(root / "cat/pipe.jpg")  # opening it to decode would block forever
    assert "cat/pipe.jpg" in {r.path for r in read_folder(root)}
    prepare_folder("folder", "uncropped", root, tmp_path / "out", cfg(skip_corrupt=True))
    assert ("cat/pipe.jpg", f"not a regular file: {root / 'cat/pipe.jpg'}") in read_skip_report(
        tmp_path / "out" / SKIP_REPORT)


def test_a_hidden_image_file_is_ignored_not_decoded(tmp_path):
    """Before, cat/._000.jpg (macOS metadata with an image's extension) was read as an image and stopped prepare."""
    root = write_fake_folder(tmp_path / "mine")
    (root / "cat/._000.jpg").write_bytes(b"\0\5\26\7")
    Image.new("RGB", (20, 20)).save(root / "cat/.thumb.png")
    assert not any("/." in r.path for r in read_folder(root))
    prepare_folder("folder", "uncropped", root, tmp_path / "out", cfg())  # did not stop at the metadata file
    assert {("cat/._000.jpg", REASON["hidden file"]), ("cat/.thumb.png", REASON["hidden file"])} <= set(
        read_skip_report(tmp_path / "out" / SKIP_REPORT))
