"""Sweep stage table: sweeps/metrics/ -> the "tuned on validation" tables in docs/tuning.md (byte-stable)."""

from pathlib import Path

from dmlbench import atomic
from dmlbench.pipeline import stage
from dmlbench.reporting.run_checks import load_checked_runs
from dmlbench.sweep import SWEEP_METRICS, TUNING_DOC
from dmlbench.reporting.tables import replace_block
from dmlbench.sweep.table import MARKERS, render


def main() -> None:
    doc = Path(TUNING_DOC)
    records = load_checked_runs(SWEEP_METRICS)  # a NaN or an out-of-range value stops here, file and key named
    text = doc.read_text(encoding="utf-8")
    updated = replace_block(text, render(records), str(doc), MARKERS)
    if updated != text:
        atomic.write_text(doc, updated)
    print(f"sweep table: {doc} {'updated' if updated != text else 'unchanged'} ({len(records)} methods)")


if __name__ == "__main__":
    stage.run(main)
