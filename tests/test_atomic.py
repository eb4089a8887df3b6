import os
import stat
from pathlib import Path

import pytest
import torch

from dmlbench import atomic


def test_save_torch_gives_the_same_bytes_under_any_name(tmp_path):
    state = {"w": torch.arange(6.0).reshape(2, 3), "classes": [1, 2]}
    atomic.save_torch(tmp_path / "a.pt", state)
    atomic.save_torch(tmp_path / "sub/b.pt", state)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "sub/b.pt").read_bytes()
    assert torch.equal(torch.load(tmp_path / "a.pt", weights_only=True)["w"], state["w"])


def test_failed_write_keeps_the_previous_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "metrics.json"
    atomic.write_json(target, {"recall@1": 0.5})
    with pytest.raises(TypeError):
        atomic.write_json(target, {"bad": object()})
    assert target.read_text() == '{\n  "recall@1": 0.5\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


@pytest.fixture(params=[0o002, 0o022], ids=["umask002", "umask022"])
def umask(request):
    """Run the test under a umask (process-wide: set and restored around one test)."""
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_files_get_the_mode_a_plain_open_gives(tmp_path, umask):
    """A colleague (or a group's shared DVC cache) can read what the stages write: 0664 under umask 002, 0644 under
    022, as open() would create it; never mkstemp's 0600."""
    expected = 0o666 & ~umask
    with open(tmp_path / "plain.txt", "w") as f:
        f.write("x")
    atomic.write_text(tmp_path / "a.txt", "x")
    atomic.write_json(tmp_path / "sub/b.json", {"x": 1})
    atomic.save_torch(tmp_path / "c.pt", {"w": torch.zeros(2)})
    assert mode(tmp_path / "plain.txt") == expected == {0o002: 0o664, 0o022: 0o644}[umask]
    assert [mode(tmp_path / p) for p in ("a.txt", "sub/b.json", "c.pt")] == [expected] * 3
    assert mode(tmp_path / "sub") == 0o777 & ~umask


def test_rewriting_a_file_keeps_its_own_mode_as_open_does(tmp_path, umask):
    target = tmp_path / "README.md"
    target.write_text("old")
    os.chmod(target, 0o640)
    atomic.write_text(target, "new")
    assert target.read_text() == "new" and mode(target) == 0o640
    link = tmp_path / "link.txt"  # a symlink (DVC's cache links) is replaced by a plain file with the umask's mode
    link.symlink_to(target)
    atomic.write_text(link, "own")
    assert not link.is_symlink() and mode(link) == 0o666 & ~umask and target.read_text() == "new"


def test_temp_dir_gets_the_mode_mkdir_gives(tmp_path, umask):
    """exports/<run>/ is built in such a folder and renamed into place: 0775 / 0755, never mkdtemp's 0700."""
    first, second = atomic.temp_dir(tmp_path, ".run."), atomic.temp_dir(tmp_path, ".run.")
    assert first != second and first.name.startswith(".run.") and not any(first.iterdir())
    assert mode(first) == mode(second) == 0o777 & ~umask


@pytest.mark.parametrize("before", ["folder", "file", "link", "nothing"])
def test_replace_dir_puts_the_new_folder_in_place_of_whatever_was_there(tmp_path, before):
    target, staging = tmp_path / "out", tmp_path / ".out.partial"
    staging.mkdir()
    (staging / "new.txt").write_text("new")
    if before == "folder":
        target.mkdir()
        (target / "old.txt").write_text("old")
    elif before == "file":
        target.write_text("old")
    elif before == "link":
        target.symlink_to(tmp_path / "elsewhere")  # dangling: it is replaced, never followed
    atomic.replace_dir(staging, target)
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging or old copy left


def test_replace_dir_puts_the_old_folder_back_when_the_new_one_cannot_move_in(tmp_path, monkeypatch):
    target, staging = tmp_path / "out", tmp_path / ".out.partial"
    staging.mkdir()
    target.mkdir()
    (target / "old.txt").write_text("old")
    real_rename = Path.rename

    def refuse_the_staging(self, to):
        if self == staging:
            raise PermissionError(13, "Permission denied", str(to))
        return real_rename(self, to)

    monkeypatch.setattr(Path, "rename", refuse_the_staging)
    with pytest.raises(PermissionError):
        atomic.replace_dir(staging, target)
    assert (target / "old.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.partial", "out"]  # the caller removes its staging
