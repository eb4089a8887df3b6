"""Metrics files + the seeds' published numbers -> markdown tables -> the README's marked block."""

import json
import statistics
from pathlib import Path

import yaml
from tabulate import tabulate

from dmlbench.data.protocol import RECALL_KS
from dmlbench.errors import DmlbenchError
from dmlbench.reporting.run_record import source_label

START, END = "<!-- tables:start -->", "<!-- tables:end -->"
DATASET_TITLES = {"synthetic": "Synthetic demo (CUB layout)", "car": "CARS196", "cub": "CUB200-2011",
                  "sop": "Stanford Online Products", "isc": "In-shop Clothes", "folder": "Your own images (folder)"}
BACKBONE_TITLES = {"resnet18": "ResNet18", "resnet34": "ResNet34", "resnet50": "ResNet50",
                   "resnext50": "ResNeXt50", "googlenet": "GoogLeNet", "bn_inception": "BN-Inception"}
MISSING = "—"
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


def recall_table(dataset: str, runs: list[dict], published: list[dict]) -> str:
    """One dataset: every dmlbench configuration (and a "—" row for a seed cell nobody ran) beside the seeds' numbers.

    Rows are grouped by (method, backbone, crop); runs that differ only in their seed share a row showing mean +- sample
    standard deviation over the n seeds (column "n"). A method with binary codes (NormSoftmax) gets a dense and a
    binary row for each configuration and for the seed. A seed whose file names ``compare_with`` (a variant of
    ours) gets its row right after that variant's rows; our other variants come first, with no published neighbour.
    """
    ks = RECALL_KS[dataset]
    header = ["Method", "Backbone", "Variant", "Crop", "Features", "Source", "n", *[f"R@{k}" for k in ks], "MAP@R",
              "R-Prec"]
    ours: dict[tuple, list[list[dict]]] = {}
    for key, group in _groups(r for r in runs if r["run"]["dataset"] == dataset).items():
        ours.setdefault(key[:3], []).append(group)
    theirs = {(seed["method"], backbone, crop): (seed, cell)
              for seed in published for crop, cells in seed["recall"].get(dataset, {}).items()
              for backbone, cell in cells.items()}
    rows = []
    for key in sorted(set(ours) | set(theirs)):
        method, backbone, crop = key
        seed, cell = theirs.get(key, (None, None))
        configs = ours.get(key, [])
        every = [r for group in configs for r in group]
        features = sorted({f for r in every for f in _features(r, None)} | set(_features(None, cell)),
                          key=lambda f: (f != "dense", f))
        paired = (seed or {}).get("compare_with")
        for feature in features:  # each feature's rows together: ours, then the seed's, easy to compare
            for group in _beside_published(configs, paired):
                variant = group[0]["run"]["variant"] if group else paired or cell["variant"]
                rows.append([method, BACKBONE_TITLES.get(backbone, backbone), variant, crop, feature,
                             *_our_cells(group, feature, ks, _ambiguous(group, configs))])
            if cell is not None:
                values = cell["values"] if feature == "dense" else cell.get(feature)
                shown = [f"{v:.1f}" for v in values] if values else [MISSING] * len(ks)
                rows.append([method, BACKBONE_TITLES.get(backbone, backbone), cell["variant"], crop, feature,
                             f"{seed['source']}, published (best test epoch)", MISSING, *shown, MISSING, MISSING])
    return tabulate(rows, header, tablefmt="github", disable_numparse=True)


def _beside_published(configs: list[list[dict]], paired: str | None) -> list[list[dict] | None]:
    """The configurations in row order, the published row to follow: those of the ``paired`` variant last (None
    stands for "not run"); without a pairing all of them (or None)."""
    if paired is None:
        return configs or [None]
    others = [g for g in configs if g[0]["run"]["variant"] != paired]
    return others + ([g for g in configs if g[0]["run"]["variant"] == paired] or [None])


def published_notes(dataset: str, published: list[dict]) -> str:
    """The notes of the seeds with numbers for ``dataset`` (what their rows are, and the evidence), one paragraph
    each; empty when none has a note."""
    return "".join(f"\n\n{seed['source']}: {' '.join(seed['note'].split())}" for seed in published
                   if seed.get("note") and seed["recall"].get(dataset))


def _groups(runs) -> dict[tuple, list[dict]]:
    """Runs by (method, backbone, crop, variant, source, digest): the digest holds every param but the seed."""
    groups: dict[tuple, list[dict]] = {}
    for r in sorted(runs, key=lambda r: (r["run"]["name"], r["run"]["seed"])):
        run = r["run"]
        key = (run["method"], run["backbone"], run["crop"], run["variant"], source_label(run), run["digest"])
        groups.setdefault(key, []).append(r)
    return groups


def _ambiguous(group: list[dict] | None, configs: list[list[dict]]) -> bool:
    """Whether another configuration shows the same variant and source: then the row names its run digest."""
    if group is None:
        return False
    label = (group[0]["run"]["variant"], source_label(group[0]["run"]))
    return sum((g[0]["run"]["variant"], source_label(g[0]["run"])) == label for g in configs) > 1


def _features(run: dict | None, cell: dict | None) -> list[str]:
    """dense first, then every extra feature (e.g. binary) that the run measured or the seed published."""
    extra = {k for k, v in (run or {}).get("metrics", {}).items() if isinstance(v, dict)}
    extra |= {k for k in (cell or {}) if k not in ("variant", "values")}
    return ["dense", *sorted(extra)]


def _our_cells(group: list[dict] | None, feature: str, ks, name_run: bool) -> list[str]:
    """Source, n and the recall/MAP@R/R-Precision cells of a configuration for ``feature``; dashes when not run."""
    if group is None:
        return ["dmlbench (not run)", MISSING, *[MISSING] * (len(ks) + 2)]
    source = source_label(group[0]["run"])
    if name_run:  # two configurations differing only in a param the other columns do not show (a margin)
        seeds = ", ".join(str(r["run"]["seed"]) for r in group)
        source += f", seed{'s' if len(group) > 1 else ''} {seeds}, run {group[0]['run']['digest']}"
    names = [f"recall@{k}" for k in ks] + ["map@r", "r_precision"]
    values = [[_metrics(r, feature).get(name) for r in group] for name in names]
    cells = [_mean_sd(v) for v in values]
    if len(group) == 1:  # one run: its interval over test classes; several seeds: their spread instead
        for i, name in enumerate(names):
            bounds = _interval(group[0], feature, name) if name in WITH_INTERVAL else None
            if bounds is not None and values[i][0] is not None:
                cells[i] += f" [{percent(bounds[0])}, {percent(bounds[1])}]"
    return [source, str(len(group)), *cells]


def _interval(run: dict, feature: str, name: str) -> list[float] | None:
    """The run's 95 % interval of ``name`` for ``feature`` ([low, high] fractions), or None when its metrics file
    has none (written before evaluate made them); a malformed one stops the tables with one line."""
    path = ["intervals", "metrics", *([feature] if feature != "dense" else []), name]
    value = run
    for depth, part in enumerate(path):
        if not isinstance(value, dict):
            _malformed(run, path[:depth], value, "an object")
        value = value.get(part)
        if value is None:
            return None
    if not (isinstance(value, list) and len(value) == 2 and all(_fraction(v) for v in value) and value[0] <= value[1]):
        _malformed(run, path, value, "[low, high] fractions with low <= high")
    return value


def _malformed(run: dict, path: list[str], value, allowed: str):
    raise DmlbenchError(f"the metrics file of run {run['run']['name']} holds {'.'.join(path)} = {value!r}, not "
                        f"{allowed}: delete it, or rerun dvc repro evaluate for that run")


def _fraction(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1


def interval_note(dataset: str, runs: list[dict]) -> str:
    """The line under a recall table saying what its bracketed ranges are, when one of its runs has them."""
    if not any(r["run"]["dataset"] == dataset and r.get("intervals") for r in runs):
        return ""
    return ("\n\nR@1 and MAP@R of a single run (n = 1) carry [low, high], their 95 % bootstrap interval over the test "
            "classes (1,000 resamples, seeded; `docs/evaluation.md`); rows of several seeds give mean ± sample "
            "standard deviation instead.")


def _metrics(run: dict, feature: str) -> dict:
    return run["metrics"] if feature == "dense" else run["metrics"].get(feature, {})


def _mean_sd(values: list[float | None]) -> str:
    """One run: '86.4'; several seeds: '86.4 ± 0.3' (sample standard deviation), in percent."""
    if any(v is None for v in values):
        return MISSING
    if len(values) == 1:
        return percent(values[0])
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


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


def provenance_table(runs: list[dict]) -> str:
    """Where each run's numbers came from: device, software, code commit, precision, determinism, train time."""
    header = ["Run", "Device", "Devices", "torch", "CUDA / cuDNN", "Commit", "Precision", "Deterministic",
              "Train time"]
    rows = []
    for r in sorted(runs, key=lambda r: r["run"]["name"]):
        p = r.get("provenance")
        if not p:
            rows.append([r["run"]["name"], *[MISSING] * (len(header) - 1)])
            continue
        device = p["device_name"] + (f" ({p['cpu_threads']} threads)" if p["device"] == "cpu" else "")
        cuda = f"{p['cuda']} / {p['cudnn']}" if p.get("cuda") else MISSING
        commit = (p.get("git_commit") or MISSING)[:8] + ("+dirty" if str(p.get("git_commit")).endswith("+dirty")
                                                          else "")
        rows.append([r["run"]["name"], device, str(p["device_count"]), p["torch"], cuda, commit, p["precision"],
                     "yes" if p["deterministic"] else "no", f"{p['train_seconds'] / 60:.1f} min"])
    return tabulate(rows, header, tablefmt="github", disable_numparse=True)


def render_tables(runs: list[dict], measured: list[dict], published: list[dict],
                  datasets: tuple[str, ...] = (), complexity: bool = True) -> str:
    """The generated tables as one markdown block (without the markers): a recall table per dataset that has runs
    or is listed in ``datasets``, the provenance of every run, and the params/MACs table if ``complexity``."""
    parts = []
    for dataset in ["synthetic", "car", "cub", "sop", "isc", "folder"]:
        if dataset not in datasets and not any(r["run"]["dataset"] == dataset for r in runs):
            continue
        parts.append(f"#### {DATASET_TITLES[dataset]}: Recall@K, MAP@R, R-Precision (%)\n\n"
                     + recall_table(dataset, runs, published) + interval_note(dataset, runs)
                     + published_notes(dataset, published))
    if runs:
        parts.append("#### Where the numbers came from\n\n" + provenance_table(runs))
    if complexity:
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
