"""Sweep stage trial@<trial>: train one trial with train.select: best_val and record its validation scores.

Files: sweeps/trials/<method>/<trial>/ (model, provenance, trial.json, training logs). The test set is not read:
only the method's chosen trial is embedded and evaluated (stage tuned@<method>).
"""

import sys

from dmlbench.pipeline import experiment, stage
from dmlbench.pipeline.run_name import run_of
from dmlbench.pipeline.train import TrainPlace, train_run
from dmlbench.sweep import SWEEP_PREPARED, load_trial, trial_paths
from dmlbench.sweep.trial import check_selects_on_validation, record_trial
from dmlbench.training.launch import under_torchrun


def main() -> None:
    name = sys.argv[1]
    params, trial = load_trial(name)
    xp = experiment.load_experiment(params)
    check_selects_on_validation(xp, name)
    run = run_of(xp, SWEEP_PREPARED)
    paths = trial_paths(trial["method"], name)
    folder = paths.model.parent
    train_run(xp, run, TrainPlace(SWEEP_PREPARED, paths, folder / "live", folder / "training.png"), [__file__, name])
    if under_torchrun():  # a rank of the training: the launching process records the trial
        return
    record = record_trial(xp, run, paths, name, trial)
    print(f"sweep trial {name} ({trial['changes']}): val {record['select_metric']} {record['val_score']:.4f} "
          f"(epoch {record['selected_epoch']})")


if __name__ == "__main__":
    stage.run(main)
