import dataclasses
import json
from pathlib import Path

from dmlbench.identity import Experiment, make_run
from dmlbench.methods import get_method
from dmlbench.params.experiment import EXPERIMENT_KEYS
from dmlbench.reporting.staleness import NO_PROVENANCE, current_name, staleness
from dmlbench.reporting.tables import provenance_table, recall_table, render_tables

COMMITTED = Path(__file__).resolve().parents[2] / "metrics" / "runs"
CGD_SECTION = json.loads((COMMITTED / "cgd-SG-resnet18-synthetic-uncropped-demo-s0-e2499339.json").read_text())[
    "params"]["method"]  # a whole cgd section as evaluate records it
PROVENANCE = {"device": "cpu", "device_name": "Xeon", "device_count": 1, "cpu_threads": 2, "torch": "2.4.0",
              "cuda": None, "cudnn": None, "git_commit": "abcdef123456", "code_digest": "0123456789abcdef",
              "precision": "fp32", "deterministic": False, "train_seconds": 60.0}


def current_record(margin=None):
    """A metrics file named as the current identity code names it (identity.make_run on its recorded values)."""
    cfg = get_method("cgd").config_cls(**CGD_SECTION)
    exp = Experiment(method="cgd", backbone="resnet18", dataset="car", crop="uncropped", seed=0, recipe="demo")
    identity = {"train.pretrained": False, "data": "feedbeef"}
    run = make_run(exp, "SG", cfg, identity)
    method = dataclasses.asdict(cfg)
    if margin is not None:  # recorded params the name was not made from: the current code names them otherwise
        method["margin"] = margin
    facts = {**run.record(), "identity": identity, "pretrained": False, "epochs": 3, "selection": "last"}
    return {"run": facts, "params": {"method": method}, "provenance": dict(PROVENANCE),
            "metrics": {"recall@1": 0.5, "recall@2": 0.6, "recall@4": 0.7, "recall@8": 0.8, "map@r": 0.25,
                        "r_precision": 0.3}}


def test_a_current_row_is_not_marked():
    record = current_record()
    assert current_name(record) == record["run"]["name"] and staleness(record) is None
    row = recall_table("car", [record], []).splitlines()[2]
    assert row.rstrip(" |").endswith(record["run"]["digest"]) and "†" not in render_tables([record], [], [])


def test_a_row_whose_params_the_current_code_names_otherwise_is_marked_with_the_new_name():
    record = current_record(margin=0.3)
    renamed = current_name(record)
    assert renamed != record["run"]["name"] and renamed.startswith("cgd-SG-resnet18-car-uncropped-demo-s0-")
    reason = f"the current code names it {renamed}: rerun it with the current code"
    assert staleness(record) == reason
    row = recall_table("car", [record], []).splitlines()[2]
    assert row.rstrip(" |").endswith(f"{record['run']['digest']}†")
    assert provenance_table([record]).splitlines()[2].rstrip(" |").endswith(f"† {reason}")
    assert "† not what the current code would make of its params" in render_tables([record], [], [])


def test_a_row_without_provenance_or_with_refused_params_is_marked():
    record = current_record()
    record["provenance"] = None
    assert staleness(record) == NO_PROVENANCE
    record["params"]["method"]["no_such_param"] = 1
    assert staleness(record).startswith(f"{NO_PROVENANCE}; the current code refuses its recorded params (TypeError")


def test_one_stale_seed_marks_its_configuration_row():
    fresh, old = current_record(), current_record()
    old["run"]["seed"] = 1  # same digest, another seed, from before provenance was recorded
    old["provenance"] = None
    assert staleness(old) is not None
    [row] = [line for line in recall_table("car", [fresh, old], []).splitlines() if "ResNet18" in line]
    assert "| 2 " in row and row.rstrip(" |").endswith(f"{fresh['run']['digest']}†")


def test_a_best_val_row_made_before_the_selection_metric_is_marked():
    """Such a run selected by Recall@1 and its identity lacks train.select_metric: the current code, which names
    the metric, names it otherwise; a select: last row keeps its name (the metric picks nothing there)."""
    record = current_record()
    identity = {"train.pretrained": False, "train.select": "best_val", "data": "feedbeef"}
    exp = Experiment(**{k: record["run"][k] for k in EXPERIMENT_KEYS})
    cfg = get_method("cgd").config_cls(**CGD_SECTION)
    record["run"] = {**record["run"], **make_run(exp, "SG", cfg, identity).record(), "identity": identity}
    now = make_run(exp, "SG", cfg, {**identity, "train.select_metric": "recall@1"}).name
    assert current_name(record) == now != record["run"]["name"]
    assert current_name(current_record()) == current_record()["run"]["name"]
