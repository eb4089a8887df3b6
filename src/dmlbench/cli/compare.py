"""`dmlbench compare RUN_A RUN_B`: each metric's paired difference between two runs evaluated on the same test set,
with a paired-bootstrap 95 % interval over the test classes and a verdict in words.

The per-query values are recomputed from the runs' stored embeddings with evaluate's own code (and checked
against their metrics files), then one set of resampled classes is applied to both runs: what the runs share
(which classes are easy) cancels out, so the interval is that of the difference itself.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from dmlbench.cli.runs import RUN_NAME
from dmlbench.errors import DmlbenchError
from dmlbench.grid import cell_paths
from dmlbench.identity import RunPaths
from dmlbench.retrieval.evaluation import per_query_splits, read_embeddings
from dmlbench.retrieval.intervals import LEVEL, RESAMPLES, SEED, paired_differences
from dmlbench.retrieval.per_query import PerQuery

LABELS = {"map@r": "MAP@R", "r_precision": "R-Prec"}  # as the tables name them; recall@K is R@K
DEFAULT_CHUNK = 1024  # evaluate.chunk_size when a metrics file does not record it (memory only: ranks are exact)


@dataclass(frozen=True)
class Evaluated:
    """One run's metrics file and the embeddings it was computed from."""

    name: str
    metrics_path: Path
    record: dict
    splits: dict


def compare_runs(root: Path, name_a: str, name_b: str) -> str:
    """The report of A against B: one line per feature and metric, A - B in percentage points."""
    a, b = load_run(root, name_a), load_run(root, name_b)
    check_same_test_set(a, b)
    ks = [k for k in a.record["recall_ks"]["ks"] if k in b.record["recall_ks"]["ks"]]
    features = [f for f in _features(a.record) if f in _features(b.record)]
    lines = [f"A: {a.name}", f"B: {b.name}"]
    for feature in features:
        va, vb = per_query(a, ks, feature), per_query(b, ks, feature)
        if feature == features[0]:
            lines.append(_header(a, va))
        point_a, point_b = va.metrics(), vb.metrics()
        for name, (diff, low, high) in paired_differences(va, vb).items():
            label = LABELS.get(name, name.replace("recall@", "R@"))
            lines.append(f"{feature:6s} {label:7s} A {100 * point_a[name]:5.1f}  B {100 * point_b[name]:5.1f}  "
                         f"{verdict(label, diff, low, high)}")
    return "\n".join(lines)


def verdict(label: str, diff: float, low: float, high: float) -> str:
    """'A better than B on R@1: +2.1 [+1.4, +2.9]', 'B better than A ...', or 'no difference shown ...' when the
    interval holds 0; numbers in percentage points, the decision on the unrounded bounds."""
    words = "A better than B" if low > 0 else "B better than A" if high < 0 else "no difference shown"
    return f"{words} on {label}: {100 * diff:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]"


def _header(a: Evaluated, values: PerQuery) -> str:
    mode = "self-retrieval" if "test" in a.splits else "query -> gallery"
    classes = len(torch.unique(values.labels))
    return (f"{len(values.labels)} queries in {classes} classes ({mode}); A - B in percentage points with its "
            f"{100 * LEVEL:.0f} % paired-bootstrap interval ({RESAMPLES:,} resamples of the classes, seed {SEED}, "
            f"the same for both runs)")


def per_query(run: Evaluated, ks: list[int], feature: str) -> PerQuery:
    """The run's per-query values as evaluate computes them, refused if they disagree with its metrics file."""
    chunk = ((run.record.get("params") or {}).get("evaluate") or {}).get("chunk_size") or DEFAULT_CHUNK
    values = per_query_splits(run.splits, tuple(ks), chunk, feature)
    stored = run.record["metrics"] if feature == "dense" else run.record["metrics"].get(feature, {})
    for name, value in values.metrics().items():
        if name in stored and round(value, 6) != stored[name]:
            raise DmlbenchError(f"{run.metrics_path} says {feature} {name} = {stored[name]}, but the embeddings of "
                                f"run {run.name} give {round(value, 6)}: rerun dvc repro evaluate for that run")
    return values


def load_run(root: Path, name: str) -> Evaluated:
    """The workspace's run ``name`` (metrics/runs/, embeddings/), else the grid's cell ``name`` (benchmarks/)."""
    found = [paths for paths in (RunPaths.of(name), cell_paths(name))
             if RUN_NAME.fullmatch(name) and (root / paths.metrics).is_file()]
    if not found:
        raise DmlbenchError(f"no evaluated run {name!r} under {root}: neither {RunPaths.of(name).metrics} nor "
                            f"{cell_paths(name).metrics} exists (ls metrics/runs benchmarks/metrics shows the runs)")
    metrics_path, embeddings_path = root / found[0].metrics, root / found[0].embeddings
    record = _read_record(metrics_path)
    if not embeddings_path.is_file():  # the committed demo runs: their metrics are in git, their embeddings in DVC
        raise DmlbenchError(f"run {name} has a metrics file but not its embeddings ({embeddings_path}), which compare "
                            f"ranks again: restore them (dvc pull, or dvc repro for that run)")
    saved = read_embeddings(embeddings_path)
    stamp = saved.get("run")
    if not isinstance(stamp, dict) or any(record["run"].get(k) != v for k, v in stamp.items()):
        raise DmlbenchError(f"{embeddings_path} and {metrics_path} are not of the same run: rerun dvc repro "
                            f"evaluate for {name}")
    return Evaluated(name, metrics_path, record, saved["splits"])


def _read_record(path: Path) -> dict:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DmlbenchError(f"cannot read {path} as JSON ({type(exc).__name__}): rerun dvc repro evaluate") from None
    if not (isinstance(record, dict) and isinstance(record.get("run"), dict) and isinstance(record.get("metrics"), dict)
            and isinstance((record.get("recall_ks") or {}).get("ks"), list)):
        raise DmlbenchError(f"{path} is not a metrics file of evaluate (run, metrics, recall_ks): rerun dvc repro "
                            f"evaluate")
    return record


def _features(record: dict) -> list[str]:
    """dense, then every other feature the metrics file holds (nested under its name)."""
    return ["dense", *sorted(k for k, v in record["metrics"].items() if isinstance(v, dict))]


def check_same_test_set(a: Evaluated, b: Evaluated) -> None:
    """Refuse, in one line, two runs whose evaluation splits differ in their images (paths, in order) or labels."""
    problem = _test_set_difference(a.splits, b.splits)
    if problem:
        raise DmlbenchError(f"runs {a.name} and {b.name} were not evaluated on the same test set ({problem}): "
                            f"compare runs of one dataset")


def _test_set_difference(a: dict, b: dict) -> str | None:
    if set(a) != set(b):
        return f"splits {sorted(a)} vs {sorted(b)}"
    for split in sorted(a):
        paths_a, paths_b = a[split]["paths"], b[split]["paths"]
        if len(paths_a) != len(paths_b):
            return f"{split}: {len(paths_a)} vs {len(paths_b)} images"
        for i, (pa, pb) in enumerate(zip(paths_a, paths_b)):
            if pa != pb:
                return f"{split} image {i}: {pa} vs {pb}"
        labels_a, labels_b = a[split]["labels"].tolist(), b[split]["labels"].tolist()
        for i, (la, lb) in enumerate(zip(labels_a, labels_b)):
            if la != lb:
                return f"{split} image {i} ({paths_a[i]}): label {la} vs {lb}"
    return None
