"""One trial's record (its validation scores, no test-set number) and the evaluation of a method's chosen trial."""

from dmlbench.errors import DmlbenchError
from dmlbench.identity import Run, RunPaths
from dmlbench.params.experiment import ExperimentParams
from dmlbench.pipeline import experiment
from dmlbench.pipeline.run_name import run_of
from dmlbench.pipeline.steps import embed_run, evaluate_run
from dmlbench.sweep import SWEEP_PREPARED, TRIALS_DIR, check_trials_current, read_sweep, trial_params, trial_paths
from dmlbench.sweep.choose import choose, read_trials, trial_record, write_trial_record
from dmlbench.training.model_file import read_model_file


def check_selects_on_validation(xp: ExperimentParams, name: str) -> None:
    """A trial must pick its epoch on held-out training classes: anything else would tune on the test set."""
    if xp.train.select != "best_val":
        raise DmlbenchError(f"sweep trial {name}: train.select is {xp.train.select!r}; a sweep's trials select on "
                            f"held-out training classes: set base.train.select: best_val in sweeps/params.yaml")


def record_trial(xp: ExperimentParams, run: Run, paths: RunPaths, name: str, trial: dict) -> dict:
    """Write trial.json beside the trial's model: its values and the validation scores its model file records."""
    training = read_model_file(paths.model)["training"]
    record = {**trial_record(name, trial, training), "run": run.name}
    write_trial_record(paths.model.parent, record)
    return record


def evaluate_chosen(method: str) -> dict:
    """Choose ``method``'s trial by validation score, embed the test set with it alone, write its metrics file
    (with the sweep's facts: trials, chosen, every trial's scores); returns the metrics and those facts."""
    sweep = read_sweep()
    check_trials_current(sweep)
    names = [n for n, t in sweep["trials"].items() if t["method"] == method]
    records = read_trials(TRIALS_DIR / method, names)
    chosen = choose(records)
    trial = sweep["trials"][chosen["trial"]]
    xp = experiment.load_experiment(trial_params(sweep, trial))
    experiment.check_ks_fit(xp, SWEEP_PREPARED)
    run = run_of(xp, SWEEP_PREPARED)
    if run.name != chosen["run"]:
        raise DmlbenchError(f"trial {chosen['trial']} was trained as {chosen['run']} but its params now name "
                            f"{run.name}: rerun it (dvc repro sweeps/dvc.yaml)")
    paths = trial_paths(method, chosen["trial"])
    embed_run(xp, run, paths, SWEEP_PREPARED)
    facts = {"trials": len(records), "budget": sweep["budget"], "seed": sweep["seed"], "chosen": chosen["trial"],
             "changes": trial["changes"], "select_metric": chosen["select_metric"], "val_score": chosen["val_score"],
             "all_trials": records}
    result = evaluate_run(xp, run, paths, {"sweep": facts})
    return {**result, "sweep": facts}
