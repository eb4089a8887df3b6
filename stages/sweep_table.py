"""Sweep stage table: sweeps/metrics/ -> the "tuned on validation" tables in docs/tuning.md (byte-stable)."""

from pathlib import Path

from dmlbench import atomic
from dmlbench.pipeline import stage
from dmlbench.reporting.run_checks import load_checked_runs
from dmlbench.sweep import SWEEP_METRICS, TUNING_DOC
from dmlbench.sweep.table import render, replace_sweep_block


def main() -> None:
    doc = Path(TUNING_DOC)
    records = load_checked_runs(SWEEP_METRICS)  # a NaN or an out-of-range value stops here, file and key named
    text = doc.read_text(encoding="utf-8")
    updated = replace_sweep_block(text, render(records), str(doc))
    if updated != text:
        atomic.write_text(doc, updated)
    print(f"sweep table: {doc} {'updated' if updated != text else 'unchanged'} ({len(records)} methods)")


if __name__ == "__main__":
    stage.run(main)
