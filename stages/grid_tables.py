"""Grid stage tables: benchmarks/metrics/ + benchmarks/published/ -> benchmarks/README.md's tables and
benchmarks/overview.png (Recall@1 of every cell beside the seeds' published)."""

from pathlib import Path

from dmlbench import atomic
from dmlbench.grid import GRID_METRICS
from dmlbench.pipeline import stage
from dmlbench.reporting.overview import overview_points, plot_overview
from dmlbench.reporting.run_checks import load_checked_runs
from dmlbench.reporting.tables import PUBLISHED, load_published, render_tables, replace_block

PAGE = Path("benchmarks/README.md")
OVERVIEW = Path("benchmarks/overview.png")


def main() -> None:
    # Checked before anything is rendered (a NaN, a recall of 5.0); the overview plots every cell's Recall@1.
    runs = load_checked_runs(GRID_METRICS, need_recall_at_1=True) if GRID_METRICS.is_dir() else []
    published = load_published(PUBLISHED)
    block = render_tables(runs, [], published, datasets=("car", "cub", "sop", "isc"), complexity=False)
    text = PAGE.read_text(encoding="utf-8")
    updated = replace_block(text, block, str(PAGE))
    if updated != text:
        atomic.write_text(PAGE, updated)
    plot_overview(overview_points(runs, published), OVERVIEW)
    print(f"grid tables: {len(runs)} cell(s) run -> {PAGE} ({'updated' if updated != text else 'unchanged'}), "
          f"{OVERVIEW}")


if __name__ == "__main__":
    stage.run(main)
