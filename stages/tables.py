"""Stage tables: metrics/ + benchmarks/published/ -> the README's generated block (byte-stable)."""

from pathlib import Path

from dmlbench import atomic, stage
from dmlbench.config import section
from dmlbench.errors import DmlbenchError
from dmlbench.identity import COMPLEXITY_DIR, RUNS_DIR
from dmlbench.sections import TablesConfig
from dmlbench.reporting.tables import load_json_dir, load_published, render_tables, replace_block


def main(params: dict) -> None:
    cfg = section(params, "tables", TablesConfig)
    readme = Path(cfg.readme)
    if not readme.is_file():
        raise DmlbenchError(f"{readme} not found: set tables.readme to the file that holds the table markers")
    block = render_tables(load_json_dir(RUNS_DIR), load_json_dir(COMPLEXITY_DIR),
                          load_published(Path("benchmarks/published")))
    text = readme.read_text(encoding="utf-8")
    updated = replace_block(text, block, str(readme))
    if updated != text:
        atomic.write_text(readme, updated)
    print(f"tables: {readme} {'updated' if updated != text else 'unchanged'}")


if __name__ == "__main__":
    stage.run(main)
