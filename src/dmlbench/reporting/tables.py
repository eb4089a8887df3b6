"""Metrics files + the seeds' published numbers -> markdown tables -> the README's marked block."""

import json
from pathlib import Path

import yaml
from tabulate import tabulate

from dmlbench.data.protocol import RECALL_KS
from dmlbench.errors import DmlbenchError
from dmlbench.reporting.run_record import source_label

START, END = "<!-- tables:start -->", "<!-- tables:end -->"
DATASET_TITLES = {"synthetic": "Synthetic demo (CUB layout)", "car": "CARS196", "cub": "CUB200-2011",
                  "sop": "Stanford Online Products", "isc": "In-shop Clothes", "folder": "Your own images (folder)"}
ONLY_WHEN_RUN = ("synthetic", "folder")  # no published numbers: a table only once something ran
BACKBONE_TITLES = {"resnet18": "ResNet18", "resnet34": "ResNet34", "resnet50": "ResNet50",
                   "resnext50": "ResNeXt50", "googlenet": "GoogLeNet", "bn_inception": "BN-Inception"}
MISSING = "—"


def load_json_dir(folder: Path) -> list[dict]:
    """Every *.json in ``folder``, in file-name order (so the tables are byte-stable).

    A file that is not a JSON object (truncated, corrupt, not UTF-8, a list...) stops with one line naming it
    and the fix: delete it, or rerun the stage that writes it (evaluate for metrics/runs, complexity for
    metrics/complexity) with the params of the run it records.
    """
    writer = {"runs": "evaluate", "complexity": "complexity"}.get(Path(folder).name)
    fix = (f"delete it, or rerun dvc repro {writer} with the params of the run it records" if writer
           else "delete it, or rerun the stage that writes it")
    records = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
            reason = " ".join(str(exc).split())  # one line, whatever the parser said
            raise DmlbenchError(f"cannot read {path} as JSON ({type(exc).__name__}: {reason}): {fix}") from None
        if not isinstance(record, dict):
            kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(record),
                                                                                                "a number")
            raise DmlbenchError(f"{path} holds {kind}, not the JSON object of a metrics file: {fix}")
        records.append(record)
    return records


def load_published(folder: Path) -> list[dict]:
    """Every seed's published-numbers YAML in ``folder``."""
    return [yaml.safe_load(p.read_text()) for p in sorted(Path(folder).glob("*.yaml"))]


def percent(value: float | None) -> str:
    """0.8642 -> '86.4'; None -> the missing-cell dash."""
    return MISSING if value is None else f"{100 * value:.1f}"


def recall_table(dataset: str, runs: list[dict], published: list[dict]) -> str:
    """One dataset: every dmlbench run (and a "—" row for a seed cell nobody ran) beside the seeds' numbers.

    Rows are grouped by (method, backbone, crop); a method with binary codes (NormSoftmax) gets a dense and a
    binary row for each run and for the seed.
    """
    ks = RECALL_KS[dataset]
    header = ["Method", "Backbone", "Variant", "Crop", "Features", "Source", *[f"R@{k}" for k in ks], "MAP@R",
              "R-Prec"]
    ours: dict[tuple, list[dict]] = {}
    for r in sorted((r for r in runs if r["run"]["dataset"] == dataset), key=lambda r: r["run"]["name"]):
        ours.setdefault((r["run"]["method"], r["run"]["backbone"], r["run"]["crop"]), []).append(r)
    theirs = {(seed["method"], backbone, crop): (seed, cell)
              for seed in published for crop, cells in seed["recall"].get(dataset, {}).items()
              for backbone, cell in cells.items()}
    rows = []
    for key in sorted(set(ours) | set(theirs)):
        method, backbone, crop = key
        seed, cell = theirs.get(key, (None, None))
        group = ours.get(key, [])
        features = sorted({f for r in group for f in _features(r, None)} | set(_features(None, cell)),
                          key=lambda f: (f != "dense", f))
        for feature in features:  # each feature's rows together: ours, then the seed's, easy to compare
            for run in group or [None]:
                variant = run["run"]["variant"] if run else cell["variant"]
                rows.append([method, BACKBONE_TITLES.get(backbone, backbone), variant, crop, feature,
                             *_our_cells(run, feature, ks, _ambiguous(run, group))])
            if cell is not None:
                values = cell["values"] if feature == "dense" else cell.get(feature)
                shown = [f"{v:.1f}" for v in values] if values else [MISSING] * len(ks)
                rows.append([method, BACKBONE_TITLES.get(backbone, backbone), cell["variant"], crop, feature,
                             f"{seed['source']}, published (best test epoch)", *shown, MISSING, MISSING])
    return tabulate(rows, header, tablefmt="github", disable_numparse=True)


def _ambiguous(run: dict | None, group: list[dict]) -> bool:
    """Whether another run of the group shows the same variant and source: then the row names its run."""
    if run is None:
        return False
    same = [r for r in group if r["run"]["variant"] == run["run"]["variant"]
            and source_label(r["run"]) == source_label(run["run"])]
    return len(same) > 1


def _features(run: dict | None, cell: dict | None) -> list[str]:
    """dense first, then every extra feature (e.g. binary) that the run measured or the seed published."""
    extra = {k for k, v in (run or {}).get("metrics", {}).items() if isinstance(v, dict)}
    extra |= {k for k in (cell or {}) if k not in ("variant", "values")}
    return ["dense", *sorted(extra)]


def _our_cells(run: dict | None, feature: str, ks, name_run: bool) -> list[str]:
    """Source + recall/MAP@R/R-Precision cells of our run for ``feature``; dashes when not run."""
    if run is None:
        return ["dmlbench (not run)", *[MISSING] * (len(ks) + 2)]
    metrics = run["metrics"] if feature == "dense" else run["metrics"].get(feature, {})
    source = source_label(run["run"])
    if name_run:  # two runs differing only in a param the other columns do not show (a margin, a seed)
        source += f", seed {run['run']['seed']}, run {run['run']['digest']}"
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
