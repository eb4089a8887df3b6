"""Reading a dataset's text lists (images.txt, Ebay_train.txt, ...) with one-line errors for damaged files."""

from pathlib import Path

from dmlbench.errors import DmlbenchError


def read_lines(path: Path, fix: str) -> list[str]:
    """The lines of a UTF-8 text file; a file that is not UTF-8 text or cannot be read stops with one line.

    ``fix`` says what to do about it (usually: restore the file from the archive, plus the expected layout).
    """
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:  # binary garbage, a wrong encoding, or an image saved under the list's name
        raise DmlbenchError(f"{path} is not UTF-8 text (undecodable byte at offset {exc.start}): {fix}") from None
    except OSError as exc:  # unreadable (permissions, a folder, an I/O error)
        raise DmlbenchError(f"cannot read {path} ({exc.strerror or type(exc).__name__}): {fix}") from None
