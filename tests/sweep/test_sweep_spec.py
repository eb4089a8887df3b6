"""sweeps/params.yaml: the trials drawn from each method's space, the checks on the file, the choice of a trial."""

import itertools

import numpy as np
import pytest
import yaml

from dmlbench.errors import DmlbenchError
from dmlbench.sweep import draw_trials, read_sweep, trial_params
from dmlbench.sweep.choose import choose

SPACE = {"lr": [0.1, 0.01, 0.001], "temperature": [0.5, 1.0]}


def sweep(budget=4, seed=0, space=None, method="cgd"):
    return {"budget": budget, "seed": seed, "base": {"train": {"select": "best_val"}},
            "methods": {method: {"section": {"epochs": 2}, "space": space or SPACE}}}


def test_trials_are_the_first_budget_of_a_seeded_order_of_the_combinations():
    trials = draw_trials(sweep())
    combos = list(itertools.product([0.1, 0.01, 0.001], [0.5, 1.0]))  # keys sorted: lr, temperature
    order = np.random.default_rng(0).permutation(6)[:4]
    assert [(t["set"]["lr"], t["set"]["temperature"]) for t in trials.values()] == [combos[i] for i in order]
    assert list(trials) == ["cgd-t0", "cgd-t1", "cgd-t2", "cgd-t3"]
    assert len({tuple(t["set"].items()) for t in trials.values()}) == 4  # without replacement
    assert draw_trials(sweep()) == trials and draw_trials(sweep(seed=1)) != trials


def test_a_trials_params_are_base_then_the_section_with_its_values():
    trial = draw_trials(sweep())["cgd-t0"]
    params = trial_params(sweep(), trial)
    assert params["cgd"] == {"epochs": 2, **trial["set"]}
    assert params["method"] == "cgd" and params["recipe"] == "sweep" and params["train"] == {"select": "best_val"}


@pytest.mark.parametrize("change, message", [
    ({"budget": 0}, "budget (trials per method) must be an integer >= 1, got 0"),
    ({"budget": 7}, "methods.cgd.space has 6 combinations, fewer than the budget of 7 trials"),
    ({"methods": {"nosuch": {"space": SPACE}}}, "unknown method 'nosuch' under methods"),
    ({"methods": {"cgd": {"space": {"learning_rate": [0.1]}}}}, "methods.cgd.space.learning_rate is not a cgd param"),
    ({"methods": {"cgd": {"space": {"lr": []}}}}, "methods.cgd.space.lr must be a non-empty list of values"),
    ({"methods": {"cgd": {"space": {"lr": 0.1}}}}, "methods.cgd.space.lr must be a non-empty list of values"),
])
def test_a_bad_sweep_file_is_refused_in_one_line(tmp_path, change, message):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({**sweep(), **change}))
    with pytest.raises(DmlbenchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_sweep(path)


def record(name, score, metric="map@r"):
    return {"trial": name, "select_metric": metric, "val_score": score}


def test_the_choice_is_the_best_validation_score_and_a_tie_goes_to_the_earlier_trial():
    assert choose([record("a", 0.3), record("b", 0.5), record("c", 0.4)])["trial"] == "b"
    assert choose([record("a", 0.5), record("b", 0.5)])["trial"] == "a"
    assert choose([record("a", 0.2), record("b", 0.5), record("c", 0.5)])["trial"] == "b"


@pytest.mark.parametrize("records, message", [
    ([record("a", float("nan"))], "trial a: validation score nan is not a number in"),
    ([record("a", 1.5)], "trial a: validation score 1.5 is not a number in"),
    ([record("a", 0.5), record("b", 0.4, "recall@1")], "selected by different metrics"),
    ([], "no trials to choose from"),
])
def test_garbage_trial_records_are_refused(records, message):
    with pytest.raises(DmlbenchError, match=message):
        choose(records)


def test_a_trial_that_would_not_select_on_validation_is_refused():
    from types import SimpleNamespace

    from dmlbench.sweep.trial import check_selects_on_validation

    check_selects_on_validation(SimpleNamespace(train=SimpleNamespace(select="best_val")), "cgd-t0")
    for select in ("last", "best_test"):
        with pytest.raises(DmlbenchError, match=f"sweep trial cgd-t0: train.select is '{select}'; a sweep's trials "
                                                f"select on held-out training classes: set base.train.select"):
            check_selects_on_validation(SimpleNamespace(train=SimpleNamespace(select=select)), "cgd-t0")


def test_a_trials_block_the_spaces_no_longer_draw_is_refused(tmp_path):
    from dmlbench.sweep import check_trials_current

    current = {**sweep(), "trials": draw_trials(sweep())}
    check_trials_current(current, tmp_path / "params.yaml")
    for edited in ({**current, "budget": 3}, {**current, "seed": 5},
                   {**current, "methods": {"cgd": {"space": {"lr": [0.5, 0.6, 0.7, 0.8]}}}}):
        with pytest.raises(DmlbenchError, match="the trials block is not what budget, seed and the spaces draw .*: "
                                                "run python -m dmlbench.sweep write"):
            check_trials_current(edited, tmp_path / "params.yaml")


def test_the_command_line_writes_the_trials_block(tmp_path):
    import subprocess
    import sys

    (tmp_path / "sweeps").mkdir()
    (tmp_path / "sweeps/params.yaml").write_text("# hand-written head\n" + yaml.safe_dump(sweep()))
    result = subprocess.run([sys.executable, "-m", "dmlbench.sweep", "write"], cwd=tmp_path, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "sweep: 4 trials (4 per method, seed 0) -> sweeps/params.yaml\n"
    written = (tmp_path / "sweeps/params.yaml").read_text()
    assert written.startswith("# hand-written head\n")
    assert read_sweep(tmp_path / "sweeps/params.yaml")["trials"] == draw_trials(sweep())
