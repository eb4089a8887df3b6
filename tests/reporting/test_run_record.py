"""reporting/run_record.py: the metrics file's run facts carry what best_val held out (the effective share and
the classes), so a file never claims the asked train.val_fraction when the minimum of two classes raised it."""

from committed import committed_params

from dmlbench.reporting.run_record import run_record
from dmlbench.stage_params import current_run

TRAINING = {"select": "best_val", "selected_epoch": 2, "pretrained": False, "precision": "fp32", "epochs": 3,
            "warmup_epochs": 0, "frozen_epochs": 0}
RESULT = {"metrics": {"recall@1": 0.5}, "queries": 4, "gallery": 3, "queries_without_relevant": 0}


def record(training: dict) -> dict:
    params = committed_params()
    _, method, cfg, run = current_run(params)
    saved = {"training": training, "embedding": {"precision": "fp32"}, "provenance": None}
    return run_record(params, run, method, cfg, saved, (1,), "dataset", RESULT)


def test_best_val_runs_record_the_effective_fraction_and_the_classes():
    held = {"val_classes": [3, 7], "val_fraction": 0.5, "val_fraction_asked": 0.25}
    facts = record({**TRAINING, **held, "selection_classes": 2})["run"]
    assert {k: facts[k] for k in held} == held
    assert facts["selection"] == "best_val" and facts["selected_epoch"] == 2


def test_other_selections_record_no_hold_out():
    facts = record({**TRAINING, "select": "last", "selected_epoch": 3})["run"]
    assert not {"val_classes", "val_fraction", "val_fraction_asked"} & set(facts)
