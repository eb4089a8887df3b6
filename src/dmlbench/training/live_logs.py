"""DVCLive logs written aside and swapped in only when training succeeds, so a failed run keeps the last good logs."""

import shutil
from pathlib import Path

from dmlbench import atomic


class StagedLive:
    """A DVCLive ``Live`` writing to a hidden sibling of ``live_dir``; ``publish()`` swaps it into place.

    Used as a context manager: leaving the block with an exception discards the staged logs, so the previous
    run's ``live_dir`` (the `dvc plots` and `dvc metrics` the user compares against) stays as it was.
    """

    def __init__(self, live_dir: Path):
        from dvclive import Live  # imported here: dvclive pulls in much of DVC

        self.live_dir = Path(live_dir)
        self.staging = self.live_dir.parent / f".{self.live_dir.name}.partial"
        shutil.rmtree(self.staging, ignore_errors=True)  # left by a run that was killed
        # dvcyaml=None: plots are declared in our own dvc.yaml; DVCLive must not edit it during a stage.
        self.live = Live(dir=str(self.staging), dvcyaml=None, save_dvc_exp=False, report=None)
        self.done = False

    def __enter__(self) -> "StagedLive":
        self.live.__enter__()
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.live.__exit__(kind, value, traceback)
        self.done = kind is None
        if not self.done:
            shutil.rmtree(self.staging, ignore_errors=True)

    def publish(self) -> None:
        """Replace ``live_dir`` by the staged logs (atomic.replace_dir: the old copy is removed last)."""
        if not self.done:
            raise RuntimeError("publish() after a failed or unfinished block")
        (self.staging / "plots").mkdir(parents=True, exist_ok=True)  # epochs: 0 logs nothing, but the out exists
        atomic.replace_dir(self.staging, self.live_dir)
