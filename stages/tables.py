"""Stage tables: metrics/ + benchmarks/published/ -> the README's generated block (byte-stable)."""

from pathlib import Path

from dmlbench import atomic
from dmlbench.errors import DmlbenchError
from dmlbench.identity import COMPLEXITY_DIR, RUNS_DIR
from dmlbench.params.load import load_params, section
from dmlbench.params.sections import TablesConfig
from dmlbench.pipeline import stage
from dmlbench.reporting.run_checks import load_checked_complexity, load_checked_runs
from dmlbench.reporting.tables import PUBLISHED, load_published, render_tables, replace_block


def main() -> None:
    cfg = section(load_params(), "tables", TablesConfig)  # its section only: the tables read every run's files
    readme = Path(cfg.readme)
    if not readme.is_file():
        raise DmlbenchError(f"{readme} not found: set tables.readme to the file that holds the table markers")
    # Checked before anything is rendered: a NaN or a recall of 5.0 stops here with the file and key named.
    block = render_tables(load_checked_runs(RUNS_DIR), load_checked_complexity(COMPLEXITY_DIR),
                          load_published(PUBLISHED))
    text = readme.read_text(encoding="utf-8")
    updated = replace_block(text, block, str(readme))
    if updated != text:
        atomic.write_text(readme, updated)
    print(f"tables: {readme} {'updated' if updated != text else 'unchanged'}")


if __name__ == "__main__":
    stage.run(main)
