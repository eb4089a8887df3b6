"""What every stage script shares: load params.yaml, run, turn a DmlbenchError into one line and exit status 2."""

import sys
from typing import Any, Callable

from dmlbench.config import load_params
from dmlbench.errors import DmlbenchError


def run(stage: Callable[[dict[str, Any]], None], load: Callable[[], dict[str, Any]] = load_params) -> None:
    """Run ``stage(load())`` (params.yaml by default); a DmlbenchError becomes one line on stderr and exit status 2."""
    try:
        stage(load())
    except DmlbenchError as exc:
        print(f"dmlbench: error: {exc}", file=sys.stderr)
        sys.exit(2)
