"""reporting/run_record.py: the metrics file's run facts carry what best_val held out (the effective share and
the classes), so a file never claims the asked train.val_fraction when the minimum of two classes raised it."""

from committed import committed_params

from dmlbench.identity import make_run
from dmlbench.pipeline.experiment import load_experiment
from dmlbench.reporting.run_record import run_record

TRAINING = {"select": "best_val", "selected_epoch": 2, "pretrained": False, "precision": "fp32", "epochs": 3,
            "warmup_epochs": 0, "frozen_epochs": 0}
RESULT = {"metrics": {"recall@1": 0.5}, "queries": 4, "gallery": 3, "queries_without_relevant": 0}


def record(training: dict) -> dict:
    xp = load_experiment(committed_params())
    run = make_run(xp.experiment, xp.variant, xp.config, {})
    saved = {"training": training, "embedding": {"precision": "fp32"}, "provenance": None}
    return run_record(xp, run, saved, RESULT)


def test_best_val_runs_record_the_effective_fraction_and_the_classes():
    held = {"val_classes": [3, 7], "val_fraction": 0.5, "val_fraction_asked": 0.25}
    facts = record({**TRAINING, **held, "selection_classes": 2})["run"]
    assert {k: facts[k] for k in held} == held
    assert facts["selection"] == "best_val" and facts["selected_epoch"] == 2


def test_other_selections_record_no_hold_out():
    facts = record({**TRAINING, "select": "last", "selected_epoch": 3})["run"]
    assert not {"val_classes", "val_fraction", "val_fraction_asked"} & set(facts)


def test_the_recorded_identity_names_the_run_again(tmp_path):
    """run.identity holds what the digest hashes besides the method section, so the tables' staleness check
    (reporting/staleness.py) rebuilds the very name from the metrics file alone."""
    from dmlbench.pipeline.run_name import identity_values
    from dmlbench.reporting.staleness import current_name

    xp = load_experiment(committed_params())
    run = make_run(xp.experiment, xp.variant, xp.config, identity_values(xp, "ab" * 32))
    saved = {"training": TRAINING, "embedding": {"precision": "fp32"}, "provenance": None}
    record = run_record(xp, run, saved, RESULT)
    assert record["run"]["identity"]["data"] == "ab" * 32 and record["run"]["identity"]["train.device"] == "cpu"
    assert current_name(record) == run.name
