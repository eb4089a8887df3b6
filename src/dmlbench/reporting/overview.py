"""The benchmark overview picture: Recall@1 per method and dataset, dmlbench's grid beside the seeds' published."""

from pathlib import Path

from dmlbench.reporting.figures import pyplot, save_png
from dmlbench.reporting.run_record import source_label
from dmlbench.reporting.tables import BACKBONE_TITLES, DATASET_TITLES

DATASETS = ("car", "cub", "sop", "isc")


def overview_points(runs: list[dict], published: list[dict]) -> list[dict]:
    """One point per (method, backbone, dataset, crop): the seed's published R@1 and ours (mean over seeds of the
    trained configuration with the seed recipe; untrained baselines left out), None where missing.

    A seed whose file names ``compare_with`` pairs its numbers with that variant of ours alone: that method's
    points are per variant too, and its other variants have no published neighbour.
    """
    paired = {seed["method"]: seed["compare_with"] for seed in published if seed.get("compare_with")}
    points: dict[tuple, dict] = {}
    for seed in published:
        for dataset, crops in seed["recall"].items():
            for crop, cells in crops.items():
                for backbone, cell in cells.items():
                    key = (seed["method"], paired.get(seed["method"]), backbone, dataset, crop)
                    points.setdefault(key, {"ours": []})["theirs"] = cell["values"][0]
    for r in runs:
        run = r["run"]
        if run["dataset"] not in DATASETS or run["epochs"] == 0:
            continue
        variant = run["variant"] if run["method"] in paired else None
        key = (run["method"], variant, run["backbone"], run["dataset"], run["crop"])
        points.setdefault(key, {"ours": []})["ours"].append((source_label(run), 100 * r["metrics"]["recall@1"]))
    out = []
    for (method, variant, backbone, dataset, crop), point in sorted(points.items(), key=lambda kv: _order(kv[0])):
        ours = [v for label, v in point["ours"]]
        out.append({"method": method, "variant": variant, "backbone": backbone, "dataset": dataset, "crop": crop,
                    "ours": sum(ours) / len(ours) if ours else None, "theirs": point.get("theirs")})
    return out


def _order(key: tuple) -> tuple:
    return tuple("" if part is None else part for part in key)  # None (no variant split) sorts like a string


def plot_overview(points: list[dict], path: Path) -> None:
    """One panel per dataset: a pair of horizontal bars per (method, backbone, crop); '—' where not run."""
    plt = pyplot()

    shown = [d for d in DATASETS if any(p["dataset"] == d for p in points)] or list(DATASETS[:1])
    rows = max([sum(p["dataset"] == d for p in points) for d in shown] + [1])
    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 0.45 * rows + 1.4), dpi=100, squeeze=False)
    for ax, dataset in zip(axes[0], shown):
        mine = [p for p in points if p["dataset"] == dataset]
        labels = [f"{p['method']}{' ' + p['variant'] if p.get('variant') else ''} "
                  f"{BACKBONE_TITLES.get(p['backbone'], p['backbone'])}"
                  + (" (crop)" if p["crop"] == "cropped" else "") for p in mine]
        y = range(len(mine))
        ax.barh([i + 0.2 for i in y], [p["theirs"] or 0 for p in mine], height=0.4, color="#bbbbbb",
                label="seed, published (best test epoch)")
        ax.barh([i - 0.2 for i in y], [p["ours"] or 0 for p in mine], height=0.4, color="#3b75af",
                label="dmlbench")
        for i, p in enumerate(mine):
            if p["ours"] is None:
                ax.text(1, i - 0.2, "— not run", va="center", fontsize=7)
        ax.set_yticks(list(y), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set(xlim=(0, 100), xlabel="Recall@1 (%)", title=DATASET_TITLES[dataset])
    axes[0][0].legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    save_png(fig, path)
