"""The one place a DmlbenchError becomes `dmlbench: error: ...` and exit status 2: stages, the CLI, the grid tool."""

import sys
from typing import Callable, NoReturn

from dmlbench.errors import DmlbenchError


def run(main: Callable[[], object]) -> None:
    """Run a stage's ``main``; a DmlbenchError becomes one line on stderr and exit status 2."""
    try:
        main()
    except DmlbenchError as exc:
        fail(exc)


def fail(exc: DmlbenchError) -> NoReturn:
    """Print ``exc`` as the one error line and exit with status 2 (a usage or input problem, not a crash)."""
    print(f"dmlbench: error: {exc}", file=sys.stderr)
    sys.exit(2)
