"""Metrics files + the seeds' published numbers -> markdown tables -> the README's marked block."""

import json
from pathlib import Path

import pandas as pd
import yaml
from tabulate import tabulate

from dmlbench.data.protocol import RECALL_KS
from dmlbench.errors import DmlbenchError
from dmlbench.reporting.runs_frame import BOUNDS, metric_column, runs_frame

START, END = "<!-- tables:start -->", "<!-- tables:end -->"
DATASET_TITLES = {"synthetic": "Synthetic demo (CUB layout)", "car": "CARS196", "cub": "CUB200-2011",
                  "sop": "Stanford Online Products", "isc": "In-shop Clothes", "folder": "Your own images (folder)"}
BACKBONE_TITLES = {"resnet18": "ResNet18", "resnet34": "ResNet34", "resnet50": "ResNet50",
                   "resnext50": "ResNeXt50", "googlenet": "GoogLeNet", "bn_inception": "BN-Inception"}
MISSING = "—"
STALE = "†"  # marks a row the current code would not make as it is (reporting/staleness.py says why)
PUBLISHED = Path("benchmarks/published")  # the seeds' published numbers, one YAML per seed: both tables stages read it
WITH_INTERVAL = ("recall@1", "map@r")  # the columns that show a run's interval (every column would crowd the table)


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


def recall_table(dataset: str, runs, published: list[dict]) -> str:
    """One dataset: every dmlbench configuration (and a "—" row for a seed cell nobody ran) beside the seeds' numbers.

    ``runs``: the runs frame (reporting/runs_frame.py) or the metrics files it is made from. Rows are grouped by
    (method, backbone, crop); runs that differ only in their seed share a row showing mean +- sample standard
    deviation over the n seeds (column "n"). A method with binary codes (NormSoftmax) gets a dense and a binary row
    for each configuration and for the seed. A seed whose file names ``compare_with`` (a variant of ours) gets its
    row right after that variant's rows; our other variants come first, with no published neighbour.
    """
    frame = as_frame(runs)
    ks = RECALL_KS[dataset]
    header = ["Method", "Backbone", "Variant", "Crop", "Features", "Source", "n", *[f"R@{k}" for k in ks], "MAP@R",
              "R-Prec", "Run"]
    ours: dict[tuple, list[pd.DataFrame]] = {}
    for key, group in _groups(frame[frame["dataset"] == dataset]).items():
        ours.setdefault(key[:3], []).append(group)
    theirs = {(seed["method"], backbone, crop): (seed, cell)
              for seed in published for crop, cells in seed["recall"].get(dataset, {}).items()
              for backbone, cell in cells.items()}
    rows = []
    for key in sorted(set(ours) | set(theirs)):
        method, backbone, crop = key
        seed, cell = theirs.get(key, (None, None))
        configs = ours.get(key, [])
        features = sorted(set().union(*[_features(g) for g in configs], _published_features(cell)),
                          key=lambda f: (f != "dense", f))
        paired = (seed or {}).get("compare_with")
        for feature in features:  # each feature's rows together: ours, then the seed's, easy to compare
            for group in _beside_published(configs, paired):
                variant = _first(group, "variant") if group is not None else paired or cell["variant"]
                rows.append([method, BACKBONE_TITLES.get(backbone, backbone), variant, crop, feature,
                             *_our_cells(group, feature, ks, _ambiguous(group, configs))])
            if cell is not None:
                values = cell["values"] if feature == "dense" else cell.get(feature)
                shown = [f"{v:.1f}" for v in values] if values else [MISSING] * len(ks)
                rows.append([method, BACKBONE_TITLES.get(backbone, backbone), cell["variant"], crop, feature,
                             f"{seed['source']}, published (best test epoch)", MISSING, *shown,
                             MISSING, MISSING, MISSING])
    return tabulate(rows, header, tablefmt="github", disable_numparse=True)


def as_frame(runs) -> pd.DataFrame:
    """The runs frame of ``runs`` (already one, or a list of metrics files)."""
    return runs if isinstance(runs, pd.DataFrame) else runs_frame(list(runs))


def _beside_published(configs: list[pd.DataFrame], paired: str | None) -> list[pd.DataFrame | None]:
    """The configurations in row order, the published row to follow: those of the ``paired`` variant last (None
    stands for "not run"); without a pairing all of them (or None)."""
    if paired is None:
        return configs or [None]
    others = [g for g in configs if _first(g, "variant") != paired]
    return others + ([g for g in configs if _first(g, "variant") == paired] or [None])


def published_notes(dataset: str, published: list[dict]) -> str:
    """The notes of the seeds with numbers for ``dataset`` (what their rows are, and the evidence), one paragraph
    each; empty when none has a note."""
    return "".join(f"\n\n{seed['source']}: {' '.join(seed['note'].split())}" for seed in published
                   if seed.get("note") and seed["recall"].get(dataset))


GROUP_KEYS = ["method", "backbone", "crop", "variant", "source", "digest"]  # the digest holds every param but the seed


def _groups(frame: pd.DataFrame) -> dict[tuple, pd.DataFrame]:
    """Runs by GROUP_KEYS, in the order of their first run by (name, seed)."""
    ordered = frame.sort_values(["name", "seed"], kind="stable")
    return {key: group for key, group in ordered.groupby(GROUP_KEYS, sort=False, dropna=False)}


def _first(group: pd.DataFrame, column: str):
    return group[column].iloc[0]


def _ambiguous(group: pd.DataFrame | None, configs: list[pd.DataFrame]) -> bool:
    """Whether another configuration shows the same variant and source: then the row names its run digest."""
    if group is None:
        return False
    label = (_first(group, "variant"), _first(group, "source"))
    return sum((_first(g, "variant"), _first(g, "source")) == label for g in configs) > 1


def _features(group: pd.DataFrame) -> set[str]:
    """dense, and every extra feature (e.g. binary) a run of ``group`` measured."""
    prefixes = {c.split(".")[0] for c in group.columns if "." in c and c.split(".")[-1] not in BOUNDS}
    return {"dense"} | {f for f in prefixes if group.filter(like=f"{f}.").notna().any(axis=None)}


def _published_features(cell: dict | None) -> set[str]:
    return {"dense"} | {k for k in (cell or {}) if k not in ("variant", "values")}


def _our_cells(group: pd.DataFrame | None, feature: str, ks, name_run: bool) -> list[str]:
    """Source, n and the recall/MAP@R/R-Precision cells of a configuration for ``feature``; dashes when not run."""
    if group is None:
        return ["dmlbench (not run)", MISSING, *[MISSING] * (len(ks) + 3)]
    source = _first(group, "source")
    if name_run:  # two configurations differing only in a param the other columns do not show (a margin)
        seeds = ", ".join(str(s) for s in group["seed"])
        source += f", seed{'s' if len(group) > 1 else ''} {seeds}, run {_first(group, 'digest')}"
    cells = []
    for name in [f"recall@{k}" for k in ks] + ["map@r", "r_precision"]:
        column = metric_column(feature, name)
        values = group[column] if column in group else pd.Series([None] * len(group), dtype="float64")
        cells.append(_mean_sd(values))
        low, high = (f"{column}.{side}" for side in BOUNDS)
        # one run: its interval over test classes; several seeds: their spread instead
        if len(group) == 1 and name in WITH_INTERVAL and low in group and values.notna().all() \
                and group[low].notna().all():
            cells[-1] += f" [{percent(group[low].iloc[0])}, {percent(group[high].iloc[0])}]"
    return [source, str(len(group)), *cells, run_reference(group)]


def run_reference(group: pd.DataFrame) -> str:
    """The row's link to "Where the numbers came from": its runs' digest (the end of their names there), with a
    dagger when one of them is stale (reporting/staleness.py)."""
    return _first(group, "digest") + (STALE if group["stale"].notna().any() else "")


def stale_note(dataset: str, runs) -> str:
    """The line under a recall table saying what its daggers mean, when one of its rows has one."""
    frame = as_frame(runs)
    if not frame.loc[frame["dataset"] == dataset, "stale"].notna().any():
        return ""
    return (f"\n\n{STALE} not what the current code would make of its params: the reason is in the Note column of "
            f"\"Where the numbers came from\" (the run's name ends with the digest in the Run column).")


def interval_note(dataset: str, runs) -> str:
    """The line under a recall table saying what its bracketed ranges are, when one of its runs has them."""
    frame = as_frame(runs)
    mine = frame[frame["dataset"] == dataset]
    if not mine.filter(regex=r"\.(low|high)$").notna().any(axis=None):
        return ""
    return ("\n\nR@1 and MAP@R of a single run (n = 1) carry [low, high], their 95 % bootstrap interval over the test "
            "classes (1,000 resamples, seeded; `docs/evaluation.md`); rows of several seeds give mean ± sample "
            "standard deviation instead.")


def _mean_sd(values: pd.Series) -> str:
    """One run: '86.4'; several seeds: '86.4 ± 0.3' (sample standard deviation), in percent."""
    if values.isna().any():
        return MISSING
    if len(values) == 1:
        return percent(values.iloc[0])
    return f"{100 * values.mean():.1f} ± {100 * values.std(ddof=1):.1f}"


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


def provenance_table(runs) -> str:
    """Where each run's numbers came from: device, software, code commit, precision, determinism, train time."""
    header = ["Run", "Device", "Devices", "torch", "CUDA / cuDNN", "Commit", "Code digest", "Params digest",
              "Precision", "Deterministic", "Train time", "Note"]
    rows = []
    for _, r in as_frame(runs).sort_values("name", kind="stable").iterrows():
        if pd.isna(r["device_type"]):  # a metrics file from before provenance was recorded
            rows.append([r["name"], *[MISSING] * 6, _text(r["params_digest"]), *[MISSING] * 3, _note(r)])
            continue
        device = r["device"] + (f" ({r['cpu_threads']} threads)" if r["device_type"] == "cpu" else "")
        cuda = f"{r['cuda']} / {r['cudnn']}" if not pd.isna(r["cuda"]) else MISSING
        commit = MISSING if pd.isna(r["commit"]) else r["commit"]
        commit = commit[:8] + ("+dirty" if commit.endswith("+dirty") else "")
        rows.append([r["name"], device, str(r["devices"]), r["torch"], cuda, commit, _text(r["code_digest"]),
                     _text(r["params_digest"]), r["precision"], "yes" if r["deterministic"] else "no",
                     f"{r['train_seconds'] / 60:.1f} min", _note(r)])
    return tabulate(rows, header, tablefmt="github", disable_numparse=True)


def _text(value) -> str:
    return MISSING if pd.isna(value) else str(value)


def _note(row) -> str:
    """Empty for a current run; the dagger and why otherwise."""
    return "" if pd.isna(row["stale"]) else f"{STALE} {row['stale']}"


def render_tables(runs, measured: list[dict], published: list[dict],
                  datasets: tuple[str, ...] = (), complexity: bool = True) -> str:
    """The generated tables as one markdown block (without the markers): a recall table per dataset that has runs
    or is listed in ``datasets``, the provenance of every run, and the params/MACs table if ``complexity``.
    ``runs``: the runs frame (reporting/runs_frame.py) or the metrics files it is made from."""
    frame = as_frame(runs)
    parts = []
    for dataset in ["synthetic", "car", "cub", "sop", "isc", "folder"]:
        if dataset not in datasets and not (frame["dataset"] == dataset).any():
            continue
        parts.append(f"#### {DATASET_TITLES[dataset]}: Recall@K, MAP@R, R-Precision (%)\n\n"
                     + recall_table(dataset, frame, published) + interval_note(dataset, frame)
                     + stale_note(dataset, frame)
                     + published_notes(dataset, published))
    if len(frame):
        parts.append("#### Where the numbers came from\n\n" + provenance_table(frame))
    if complexity:
        parts.append("#### Params | MACs at 1x3x224x224 (full model, classifier included)\n\n"
                     + complexity_table(measured, published))
    return "\n\n".join(parts) + "\n"


def replace_block(text: str, block: str, path: str, markers: tuple[str, str] = (START, END)) -> str:
    """Put ``block`` between the two ``markers`` lines of ``text`` (the README's tables markers by default)."""
    start, end = markers
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise DmlbenchError(f"{path} needs exactly one '{start}' line followed by one '{end}' line "
                            f"where the tables go: add them back")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{block}{end}{tail}"
