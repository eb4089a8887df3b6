import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pytest

from dmlbench.params.load import SEED_RANGE, build, load_params, plain, section
from dmlbench.errors import DmlbenchError
from committed import committed_params
from dmlbench.params.sections import EvaluateConfig, PrepareConfig
from dmlbench.methods.cgd import CGDConfig
from dmlbench.methods import METHODS
from dmlbench.models.backbones import BACKBONES
from dmlbench.registry import get
from dmlbench.pipeline.experiment import experiment, load_experiment as check_params


@dataclass(frozen=True)
class Example:
    count: int
    rate: float
    flag: bool
    mode: Literal["a", "b"]
    sizes: tuple[int, ...]
    cap: int | None


GOOD = {"count": 3, "rate": 1, "flag": True, "mode": "a", "sizes": [1, 2], "cap": None}


def test_build_coerces_ints_to_floats_and_lists_to_tuples():
    cfg = build(Example, GOOD, "ex")
    assert cfg == Example(3, 1.0, True, "a", (1, 2), None)
    assert isinstance(cfg.rate, float)


@pytest.mark.parametrize("key, value, message", [
    ("count", "3", "params.yaml: ex.count must be int, got '3'"),
    ("count", True, "params.yaml: ex.count must be int, got True"),
    ("flag", 1, "params.yaml: ex.flag must be bool, got 1"),
    ("mode", "c", "params.yaml: ex.mode = 'c' is not allowed (choices: a, b)"),
    ("sizes", 4, "params.yaml: ex.sizes must be a list, got 4"),
    ("sizes", [1, "x"], "params.yaml: ex.sizes[1] must be int, got 'x'"),
])
def test_build_names_the_param_and_value(key, value, message):
    with pytest.raises(DmlbenchError) as err:
        build(Example, {**GOOD, key: value}, "ex")
    assert str(err.value) == message


def test_unknown_and_missing_keys():
    with pytest.raises(DmlbenchError, match=r"unknown key ex.colour \(allowed: cap, count, flag, mode, rate, sizes\)"):
        build(Example, {**GOOD, "colour": 1}, "ex")
    with pytest.raises(DmlbenchError, match="'ex' is incomplete"):
        build(Example, {"count": 1}, "ex")
    with pytest.raises(DmlbenchError, match="has no 'evaluate' section"):
        section({}, "evaluate", EvaluateConfig)


def test_range_checks_in_post_init():
    with pytest.raises(DmlbenchError, match="evaluate.chunk_size must be >= 1, got 0"):
        section({"evaluate": {"chunk_size": 0}}, "evaluate", EvaluateConfig)
    with pytest.raises(DmlbenchError, match="prepare.max_side must be >= 32 or null, got 8"):
        section({"prepare": {"max_side": 8, "workers": 0}}, "prepare", PrepareConfig)


def test_repository_params_yaml_is_valid():
    xp = check_params(committed_params())
    assert (xp.experiment.method, xp.variant, xp.experiment.backbone) == ("cgd", "SG", "resnet18")
    assert (xp.recall_ks, xp.recall_ks_source) == ((1, 2, 4, 8), "dataset")  # evaluate.recall_ks: null


def test_load_params_errors(tmp_path):
    with pytest.raises(DmlbenchError, match="not found"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "bad.yaml").write_text("a: [1,\n")
    with pytest.raises(DmlbenchError, match="not valid YAML"):
        load_params(tmp_path / "bad.yaml")


def test_registry_lists_sorted_choices():
    with pytest.raises(DmlbenchError) as err:
        get({"cgd": 1, "abc": 2}, "cgdd", "method")
    assert str(err.value) == "unknown method 'cgdd' (choices: abc, cgd)"


def test_plain_makes_tuples_comparable_to_lists():
    assert plain({"a": (1, (2, 3))}) == {"a": [1, [2, 3]]}


def test_cgd_needs_positives_and_negatives_in_a_batch():
    params = committed_params()
    wanted = r"cgd.classes_per_batch \(16\) and cgd.images_per_class \(1\) must be >= 2"
    with pytest.raises(DmlbenchError, match=wanted):
        section({"cgd": {**params["cgd"], "images_per_class": 1, "classes_per_batch": 16}}, "cgd", CGDConfig)


@pytest.mark.parametrize("key, value, message", [
    ("gd_config", "SX", "unknown gd_config 'SX' (choices: S, M, G, SM, MS, SG, GS, MG, GM, SMG, MSG, GSM)"),
    ("feature_dim", 1000, "feature_dim 1000 does not divide by the 3 descriptors of gd_config 'SMG'"),
])
def test_cgd_descriptor_params_fail_at_stage_start(key, value, message):
    values = {**committed_params()["cgd"], "gd_config": "SMG", key: value}
    with pytest.raises(DmlbenchError, match=re.escape(message)):
        section({"cgd": values}, "cgd", CGDConfig)


@pytest.mark.parametrize("key, value, message", [
    ("method", "cgdd", "unknown method 'cgdd' (choices: {})".format(", ".join(sorted(METHODS)))),
    ("backbone", "resnet99", "unknown backbone 'resnet99' (choices: {})".format(", ".join(sorted(BACKBONES)))),
    ("dataset", "imagenet", "unknown dataset 'imagenet' (choices: car, cub, folder, isc, sop, synthetic)"),
    ("crop", "half", "params.yaml: crop = 'half' is not allowed (choices: uncropped, cropped)"),
])
def test_stage_experiment_rejects_unknown_names(key, value, message):
    params = {**committed_params(), key: value}
    with pytest.raises(DmlbenchError) as err:
        experiment(params)
    assert str(err.value) == message


@pytest.mark.parametrize("value, expected", [("1e-3", 0.001), ("1.0e-3", 0.001), (" 2E+1 ", 20.0), (3, 3.0)])
def test_numbers_written_as_strings_are_accepted_for_floats(value, expected):
    """PyYAML reads `lr: 1e-3` (no dot) as a string: a float field takes it as the number it spells."""
    values = {"count": 1, "rate": value, "flag": True, "mode": "a", "sizes": [], "cap": None}
    assert build(Example, values, "x").rate == expected


@pytest.mark.parametrize("value, message", [("fast", "x.rate must be float, got 'fast'"),
                                            (float("nan"), "x.rate must be a finite number, got nan"),
                                            ("inf", "x.rate must be float, got 'inf'")])
def test_non_numbers_and_non_finite_floats_are_refused(value, message):
    with pytest.raises(DmlbenchError, match=re.escape(message)):
        build(Example, {"count": 1, "rate": value, "flag": True, "mode": "a", "sizes": [], "cap": None}, "x")


@pytest.mark.parametrize("change, message", [
    ({"metod": "cgd"}, "unknown top-level key 'metod' (did you mean 'method'?)"),
    ({"normsoftmx": {}}, "unknown top-level key 'normsoftmx' (did you mean 'normsoftmax'?)"),
    ({"zzz": 1}, "unknown top-level key 'zzz' (allowed: backbone, cgd, "),
    ({"recipe": "my recipe"}, "recipe must be a name of letters, digits"),
    ({"seed": -3}, "params.yaml: seed must be in [0, 4294967295] (numpy's seed range), got -3"),
    ({"seed": 2**63}, "params.yaml: seed must be in [0, 4294967295] (numpy's seed range), got 9223372036854775808"),
    ({"seed": 2**32}, "params.yaml: seed must be in [0, 4294967295] (numpy's seed range), got 4294967296"),
])
def test_whole_file_check_refuses_typos_and_bad_identity(change, message):
    with pytest.raises(DmlbenchError, match=re.escape(message)):
        check_params({**committed_params(), **change})


@pytest.mark.parametrize("value", [-1, 2**32, 9223372036854775808])
def test_synthetic_seed_outside_numpys_range_is_named(value):
    params = committed_params()
    params["synthetic"]["seed"] = value
    with pytest.raises(DmlbenchError) as err:
        check_params(params)
    assert str(err.value) == f"params.yaml: synthetic.seed must be in [0, 4294967295] (numpy's seed range), got {value}"


def test_the_seed_range_is_what_numpy_accepts():
    """Both ends of SEED_RANGE seed numpy's global generator, and one past the top does not (why the range is)."""
    low, high = SEED_RANGE
    state = np.random.get_state()
    try:
        for seed in (low, high):
            np.random.seed(seed)
        with pytest.raises(ValueError):
            np.random.seed(high + 1)
    finally:
        np.random.set_state(state)
    assert experiment({**committed_params(), "seed": high}).seed == high


def test_a_missing_top_level_key_is_named():
    params = committed_params()
    del params["crop"]
    with pytest.raises(DmlbenchError, match="top-level key 'crop' is missing"):
        check_params(params)


def test_misspelled_key_inside_a_section_gets_the_closest_name():
    params = committed_params()
    params["cgd"]["margn"] = params["cgd"].pop("margin")
    with pytest.raises(DmlbenchError, match=re.escape("unknown key cgd.margn (did you mean 'margin'?)")):
        check_params(params)


@pytest.mark.parametrize("section_name, key, value, message", [
    ("cgd", "feature_dim", 0, "cgd.feature_dim must be >= the 2 descriptor(s), got 0"),
    ("cgd", "margin", -0.1, "cgd.margin must be >= 0, got -0.1"),
    ("cgd", "train_crop", 8, "cgd.train_crop (8) and cgd.test_resize (64) must be >= 16 px"),
    ("cgd", "lr_gamma", 0.0, "cgd.lr_gamma must be in (0, 1], got 0.0"),
    ("normsoftmax", "feature_dim", 0, "normsoftmax.feature_dim must be >= 1, got 0"),
    ("normsoftmax", "momentum", 1.5, "normsoftmax.momentum must be in [0, 1) and weight_decay >= 0, got 1.5"),
    ("normsoftmax", "test_crop", 8, "normsoftmax crops (64, 8) must be >= 16 px"),
    ("complexity", "image_size", 0, "complexity.image_size must be >= 32, got 0"),
])
def test_size_and_rate_params_of_every_method_are_validated(section_name, key, value, message):
    """A 0-d embedding once trained and evaluated: every size the pipeline would compute with is checked."""
    params = committed_params()
    params[section_name][key] = value
    with pytest.raises(DmlbenchError, match=re.escape(message)):
        check_params(params)
