"""The one place a DmlbenchError becomes `dmlbench: error: ...` and exit status 2: stages, the CLI, the grid tool."""

import sys
from typing import Callable, NoReturn

from dmlbench.errors import DmlbenchError

ERROR_STATUS = 2  # a usage or input problem, not a crash (which exits 1 with its traceback)


def run(main: Callable[[], object]) -> None:
    """Run a stage's ``main``; a DmlbenchError becomes one line on stderr and exit status 2."""
    try:
        main()
    except DmlbenchError as exc:
        fail(exc)


def report(exc: DmlbenchError) -> int:
    """Print ``exc`` as the one `dmlbench: error:` line on stderr; return the exit status for it."""
    print(f"dmlbench: error: {exc}", file=sys.stderr)
    return ERROR_STATUS


def fail(exc: DmlbenchError) -> NoReturn:
    """Print ``exc`` as the one error line and exit with ERROR_STATUS."""
    sys.exit(report(exc))
