"""Stage train: prepared train split -> models/<run>/model.pt, checkpoints/<run>/, DVCLive logs in dvclive/."""

from dmlbench.identity import LIVE_DIR, TRAINING_FIGURE, prepared_dir
from dmlbench.pipeline import experiment, stage
from dmlbench.pipeline.run_name import run_of
from dmlbench.pipeline.train import TrainPlace, train_run


def main() -> None:
    # The whole file first, so a bad evaluate or embed param stops before hours of training.
    xp = experiment.load()
    prepared = prepared_dir(xp.experiment.dataset, xp.experiment.crop)
    experiment.check_ks_fit(xp, prepared)
    run = run_of(xp, prepared)
    train_run(xp, run, TrainPlace(prepared, run.paths, LIVE_DIR, TRAINING_FIGURE), [__file__])


if __name__ == "__main__":
    stage.run(main)
