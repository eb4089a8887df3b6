"""Write every output through a temp file + rename so no half-written file is ever left.

The temp files and folders get the permissions a plain ``open()`` / ``mkdir`` would give (0666 / 0777 less the
umask, or an existing file's own mode): ``tempfile.mkstemp`` makes 0600 files and ``mkdtemp`` 0700 folders, and the
rename would carry that onto the outputs, unreadable to a colleague or a DVC cache shared by a group.
"""

import io
import json
import os
import secrets
import shutil
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _unique(path.parent, f".{path.name}.", ".tmp", _new_file)
    try:
        yield tmp
        _keep_mode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _keep_mode(path: Path, tmp: Path) -> None:
    """open("w") on an existing file keeps its mode, so the file replacing it takes that mode (a symlink, e.g. into
    DVC's cache, is replaced by a plain file with the umask's mode)."""
    try:
        current = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISREG(current.st_mode):
        os.chmod(tmp, stat.S_IMODE(current.st_mode))


def temp_dir(parent: str | os.PathLike, prefix: str) -> Path:
    """A new empty folder in ``parent`` named ``<prefix><random>``, with mkdir's mode (0777 less the umask), to
    build outputs in before a rename puts them in place."""
    return _unique(Path(parent), prefix, "", lambda p: os.mkdir(p, 0o777))


def replace_dir(staging: str | os.PathLike, target: str | os.PathLike) -> None:
    """Put the finished folder ``staging`` in place of ``target`` (a folder, a file, a link or nothing) by renames:
    the old one is moved aside first and deleted last, and put back if the new one cannot be moved in. There is
    a moment with no ``target`` (one rename cannot swap two folders), never a half-written one."""
    staging, target = Path(staging), Path(target)
    old = _unique(target.parent, f".{target.name}.old-", "", _free)
    if target.exists() or target.is_symlink():
        target.rename(old)
    try:
        staging.rename(target)
    except OSError:
        if old.exists() or old.is_symlink():
            old.rename(target)
        raise
    remove(old)


def remove(path: str | os.PathLike) -> None:
    """Delete a folder tree, or a file or link standing where one was (nothing when absent)."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _free(path: Path) -> None:
    """Only check that nothing is at ``path`` (a name for a rename to create)."""
    if path.exists() or path.is_symlink():
        raise FileExistsError(path)


def _new_file(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the kernel applies the umask


def _unique(parent: Path, prefix: str, suffix: str, create) -> Path:
    """``create`` a path in ``parent`` under a random name that does not exist yet (exclusive creation)."""
    for _ in range(100):
        candidate = parent / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            create(candidate)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"no free temporary name {prefix}*{suffix} in {parent}")


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write a text file (UTF-8, newlines as given)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write JSON with sorted keys and a trailing newline (byte-stable)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    """Atomically ``torch.save`` an object; same object, same bytes (so dvc.lock hashes reproduce)."""
    import torch

    # Saving to a buffer, not to the temp file: torch names the zip's inner folder after the file it
    # writes, and a random temp name would make every save differ by those bytes.
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
