"""The "tuned on validation" tables: per method its chosen trial's test metrics with intervals, and every trial."""

from tabulate import tabulate

from dmlbench.reporting.runs_frame import runs_frame
from dmlbench.reporting.staleness import staleness
from dmlbench.reporting.tables import STALE, percent

MARKERS = ("<!-- sweep:begin (written by sweeps/dvc.yaml:table; edit sweeps/params.yaml) -->", "<!-- sweep:end -->")


def _with_interval(record: dict, metric: str) -> str:
    value = record["metrics"][metric]
    low, high = record["intervals"]["metrics"][metric]
    return f"{percent(value)} [{percent(low)}, {percent(high)}]"


def tuned_table(records: list[dict]) -> str:
    """One row per method: trials run, the chosen trial and its values, its validation score, its test metrics."""
    header = ["Method", "Variant", "Trials", "Chosen", "Values", "Val score", "R@1 [95 % CI]", "MAP@R [95 % CI]",
              "R-Prec", "Run"]
    rows = []
    for r in sorted(records, key=lambda r: r["run"]["method"]):
        sweep = r["sweep"]
        rows.append([r["run"]["method"], r["run"]["variant"], str(sweep["trials"]), sweep["chosen"],
                     sweep["changes"], f"{sweep['select_metric']} {percent(sweep['val_score'])}",
                     _with_interval(r, "recall@1"), _with_interval(r, "map@r"), percent(r["metrics"]["r_precision"]),
                     r["run"]["digest"] + (STALE if staleness(r) else "")])
    return tabulate(rows, header, tablefmt="github", disable_numparse=True)


def trials_table(records: list[dict]) -> str:
    """Every trial of every method: its values, its validation scores, the epoch it kept, whether it was chosen."""
    header = ["Trial", "Values", "Val MAP@R", "Val R@1", "Kept epoch", "Chosen"]
    rows = []
    for r in sorted(records, key=lambda r: r["run"]["method"]):
        for t in r["sweep"]["all_trials"]:
            rows.append([t["trial"], ", ".join(f"{k}={v}" for k, v in t["set"].items()),
                         percent(t["val_scores"]["map@r"]), percent(t["val_scores"]["recall@1"]),
                         str(t["selected_epoch"]), "yes" if t["trial"] == r["sweep"]["chosen"] else ""])
    return tabulate(rows, header, tablefmt="github", disable_numparse=True)


def provenance_rows(records: list[dict]) -> str:
    """Where each chosen trial's numbers came from: commit, code and params digests, device, training time, and
    the stale mark's reason (reporting/staleness.py) where the current code would name the run otherwise."""
    frame = runs_frame(records).sort_values("name")
    rows = [[r["name"], str(r["commit"])[:12], r["code_digest"], r["params_digest"], r["device"],
             f"{r['train_seconds']:.0f}", f"{STALE} {r['stale']}" if isinstance(r["stale"], str) else ""]
            for _, r in frame.iterrows()]
    return tabulate(rows, ["Run", "Commit", "Code digest", "Params digest", "Device", "Train s", "Note"],
                    tablefmt="github", disable_numparse=True)


def render(records: list[dict]) -> str:
    """The generated block of docs/tuning.md (between MARKERS): both tables and where the numbers came from."""
    return "\n".join(["", tuned_table(records), "",
                      "Every trial (validation scores only; the test set was read by the chosen trials alone):", "",
                      trials_table(records), "", "Where the numbers came from (the chosen trials):", "",
                      provenance_rows(records), "", ""])
