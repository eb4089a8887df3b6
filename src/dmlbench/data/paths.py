"""Containment of the paths that dataset files name: every image prepare reads or writes stays inside its folder.

Dataset files are treated as hostile: an annotation entry could name ``/etc/passwd``, ``../../x`` or a link
pointing anywhere, and prepare would then read it, or overwrite it (the target of a record is derived from
its path). Every reader passes each image path through ``contained_path``; prepare checks its targets with
``escape_problem``.
"""

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

from dmlbench.errors import DmlbenchError

ARCHIVE_FIX = ("restore the file from the original archive (image paths must be relative to the dataset "
               "folder and stay inside it)")
LINK_FIX = "replace the link by a copy of the image, or link the whole dataset folder instead"


def _lexical_problem(relative: str) -> str | None:
    """What makes ``relative`` unsafe as written (before looking at the disk), or None."""
    if not relative or not PurePosixPath(relative).parts:
        return "is empty"
    if any(ord(c) < 32 or ord(c) == 127 for c in relative):
        # Control characters never occur in the published archives; a newline would also split error lines.
        return "contains a control character"
    # A Windows drive or UNC anchor (C:\x, \\host\share) is absolute for Windows tools that wrote the file.
    if PurePosixPath(relative).is_absolute() or PureWindowsPath(relative).anchor:
        return "is absolute"
    if ".." in PurePosixPath(relative).parts or ".." in PureWindowsPath(relative).parts:
        return "leaves the dataset folder through '..'"
    return None


def escape_problem(root: Path, relative: str, prefix: str = "", follow_last: bool = True,
                   fix: str = ARCHIVE_FIX) -> tuple[str, str] | None:
    """(problem, fix) when ``root``/``prefix``/``relative`` is not safely inside ``root``, else None.

    ``relative`` is the entry as a dataset file wrote it and ``prefix`` the trusted folder it is relative to
    (``images`` for CUB's images.txt). Besides the lexical checks on ``relative``, the joined path is
    resolved, so a symbolic link (to a file or to any folder on the way, ``prefix`` included) that points
    outside ``root`` counts as leaving it; a link that resolves inside ``root`` is fine. ``follow_last=False``
    resolves the folders only, for a writer that replaces the last component rather than writing through it.
    ``fix`` is the fix of a path that is unsafe as written (a folder of one's own is renamed, not restored).
    """
    problem = _lexical_problem(relative)
    if problem:
        return problem, fix
    real_root = os.path.realpath(root)
    joined = Path(root) / prefix / relative
    # realpath is non-strict: a missing or dangling tail is kept as written.
    real = (os.path.realpath(joined) if follow_last
            else os.path.join(os.path.realpath(joined.parent), joined.name))
    if real == real_root or not real.startswith(real_root.rstrip(os.sep) + os.sep):
        return f"resolves through a symbolic link to {real!r}, outside {str(root)!r}", LINK_FIX
    return None


def contained_path(root: Path, relative: str, where: str, prefix: str = "", fix: str = ARCHIVE_FIX) -> str:
    """``prefix``/``relative`` as a clean POSIX path when it stays inside ``root``; else one line naming ``where``.

    ``where`` names the dataset file and entry that listed the path (e.g. ``/data/cub/images.txt:5``).
    """
    found = escape_problem(root, relative, prefix, fix=fix)
    if found:
        problem, fix = found
        raise DmlbenchError(f"{where}: image path {relative!r} {problem}: {fix}")
    return str(PurePosixPath(prefix) / relative)
