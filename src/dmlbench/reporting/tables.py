"""Metrics files + the seeds' published numbers -> markdown tables -> the README's marked block."""

import json
from pathlib import Path

import yaml
from tabulate import tabulate

from dmlbench.data.protocol import RECALL_KS
from dmlbench.errors import DmlbenchError

START, END = "<!-- tables:start -->", "<!-- tables:end -->"
DATASET_TITLES = {"synthetic": "Synthetic demo (CUB layout)", "car": "CARS196", "cub": "CUB200-2011",
                  "sop": "Stanford Online Products", "isc": "In-shop Clothes", "folder": "Your own images (folder)"}
ONLY_WHEN_RUN = ("synthetic", "folder")  # no published numbers: a table only once something ran
BACKBONE_TITLES = {"resnet18": "ResNet18", "resnet34": "ResNet34", "resnet50": "ResNet50",
                   "resnext50": "ResNeXt50"}
MISSING = "—"


def load_json_dir(folder: Path) -> list[dict]:
    """Every *.json in ``folder``, in file-name order (so the tables are byte-stable)."""
    return [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))]


def load_published(folder: Path) -> list[dict]:
    """Every seed's published-numbers YAML in ``folder``."""
    return [yaml.safe_load(p.read_text()) for p in sorted(Path(folder).glob("*.yaml"))]


def percent(value: float | None) -> str:
    """0.8642 -> '86.4'; None -> the missing-cell dash."""
    return MISSING if value is None else f"{100 * value:.1f}"


def recall_table(dataset: str, runs: list[dict], published: list[dict]) -> str:
    """One dataset: dmlbench runs (and "—" rows for seed cells not run yet) beside the seeds' numbers.

    A method with binary codes (NormSoftmax) gets a dense and a binary row for each side.
    """
    ks = RECALL_KS[dataset]
    header = ["Method", "Backbone", "Variant", "Crop", "Features", "Source", *[f"R@{k}" for k in ks], "MAP@R",
              "R-Prec"]
    ours = {(r["run"]["method"], r["run"]["backbone"], r["run"]["crop"]): r
            for r in runs if r["run"]["dataset"] == dataset}
    theirs = {(seed["method"], backbone, crop): (seed, cell)
              for seed in published for crop, cells in seed["recall"].get(dataset, {}).items()
              for backbone, cell in cells.items()}
    rows = []
    for key in sorted(set(ours) | set(theirs)):
        run, (seed, cell) = ours.get(key), theirs.get(key, (None, None))
        method, backbone, crop = key
        variant = run["run"].get("variant", "") if run else cell["variant"]
        lead = [method, BACKBONE_TITLES.get(backbone, backbone), variant, crop]
        for feature in _features(run, cell):
            rows.append(lead + [feature, *_our_cells(run, feature, ks)])
            if cell is not None:
                values = cell["values"] if feature == "dense" else cell.get(feature)
                shown = [f"{v:.1f}" for v in values] if values else [MISSING] * len(ks)
                rows.append(lead + [feature, f"{seed['source']}, published (best test epoch)", *shown, MISSING,
                                    MISSING])
    return tabulate(rows, header, tablefmt="github", disable_numparse=True)


def _features(run: dict | None, cell: dict | None) -> list[str]:
    """dense first, then every extra feature (e.g. binary) that the run measured or the seed published."""
    extra = {k for k, v in (run or {}).get("metrics", {}).items() if isinstance(v, dict)}
    extra |= {k for k in (cell or {}) if k not in ("variant", "values")}
    return ["dense", *sorted(extra)]


def _our_cells(run: dict | None, feature: str, ks) -> list[str]:
    """Source + recall/MAP@R/R-Precision cells of our run for ``feature``; dashes when not run."""
    if run is None:
        return ["dmlbench (not run)", *[MISSING] * (len(ks) + 2)]
    metrics = run["metrics"] if feature == "dense" else run["metrics"].get(feature, {})
    warmup = run["run"].get("warmup_epochs", 0)
    epochs = f"{warmup}+{run['run']['epochs']}" if warmup else run["run"]["epochs"]
    source = f"dmlbench, {epochs} epochs, {run['run']['selection']}"
    return [source, *[percent(metrics.get(f"recall@{k}")) for k in ks], percent(metrics.get("map@r")),
            percent(metrics.get("r_precision"))]


def complexity_table(measured: list[dict], published: list[dict]) -> str:
    """Params | MACs per backbone and dataset: ours in the seed convention, today's thop, the seeds'."""
    datasets = ["car", "cub", "sop", "isc"]
    header = ["Method", "Backbone", "Count", *[DATASET_TITLES[d] for d in datasets]]
    rows = []
    for entry in measured:
        cells = {(c["backbone"], c["dataset"]): c for c in entry["grid"]}
        for backbone in sorted({b for b, _ in cells}):
            for key, label in (("macs_seed", "dmlbench, thop 2020 rules (seed convention)"),
                               ("macs_thop", "dmlbench, thop today")):
                rows.append([entry["method"], BACKBONE_TITLES.get(backbone, backbone), label, *[
                    _params_macs(cells[(backbone, d)], key) if (backbone, d) in cells else MISSING
                    for d in datasets]])
    for seed in published:
        for backbone, cells in seed.get("complexity", {}).items():
            rows.append([seed["method"], BACKBONE_TITLES.get(backbone, backbone),
                         f"{seed['source']}, published",
                         *[cells.get(d, MISSING).replace("|", "\\|") for d in datasets]])
    return tabulate(rows, header, tablefmt="github", disable_numparse=True)


def _params_macs(cell: dict, key: str) -> str:
    from dmlbench.reporting.complexity import format_count

    return f"{format_count(cell['params'])} \\| {format_count(cell[key])}"


def render_tables(runs: list[dict], measured: list[dict], published: list[dict]) -> str:
    """All generated tables as one markdown block (without the markers)."""
    parts = []
    for dataset in ["synthetic", "car", "cub", "sop", "isc", "folder"]:
        if dataset in ONLY_WHEN_RUN and not any(r["run"]["dataset"] == dataset for r in runs):
            continue
        parts.append(f"#### {DATASET_TITLES[dataset]}: Recall@K, MAP@R, R-Precision (%)\n\n"
                     + recall_table(dataset, runs, published))
    parts.append("#### Params | MACs at 1x3x224x224 (full model, classifier included)\n\n"
                 + complexity_table(measured, published))
    return "\n\n".join(parts) + "\n"


def replace_block(text: str, block: str, path: str) -> str:
    """Put ``block`` between the START and END markers of ``text``."""
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise DmlbenchError(f"{path} needs exactly one '{START}' line followed by one '{END}' line "
                            f"where the tables go: add them back")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block}{END}{tail}"
