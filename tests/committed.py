"""The repository's params.yaml as committed (HEAD), never the workspace's: a user who has just run
`dvc exp run -S dataset=folder` leaves other params in the workspace, and the tests must not depend on them."""

import copy
import functools
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


@functools.cache
def _committed_text() -> str:
    result = subprocess.run(["git", "show", "HEAD:params.yaml"], cwd=REPO, capture_output=True, text=True)
    if result.returncode != 0:  # not a git checkout (an sdist): the file is the committed one
        return (REPO / "params.yaml").read_text()
    return result.stdout


def committed_params() -> dict:
    """A fresh copy of the committed params.yaml (tests may change it freely)."""
    return copy.deepcopy(yaml.safe_load(_committed_text()))
