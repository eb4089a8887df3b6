"""The grid's cells: derived from the recipes, valid params for every cell, the seeds' published cells covered, and
`python -m dmlbench.grid sets` giving the single-experiment pipeline the same run as the grid."""

from pathlib import Path

import pytest
import yaml

from dmlbench.errors import DmlbenchError
from dmlbench.grid import (GRID_PARAMS, RECIPES_DIR, dvc_sets, grid_cells, load_recipes, params_of,
                           read_grid, render_generated)
from dmlbench.grid.__main__ import main
from dmlbench.identity import make_run
from dmlbench.pipeline.experiment import load_experiment
from dmlbench.pipeline.run_name import identity_values
from dmlbench.reporting.tables import PUBLISHED

REPO = Path(__file__).resolve().parents[1]


def run_name(params: dict) -> str:
    """The run ``params`` describe on one prepared folder (the same data digest for every cell)."""
    xp = load_experiment(params)
    return make_run(xp.experiment, xp.variant, xp.config, identity_values(xp, "data")).name


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)


def test_the_committed_cells_are_those_the_recipes_give():
    grid, recipes = read_grid(), load_recipes()
    expected = render_generated(grid_cells(recipes, grid["base"]["prepare"]), grid["base"], recipes)
    assert GRID_PARAMS.read_text().endswith(expected), "run: python -m dmlbench.grid write"


@pytest.mark.slow  # validates all ~220 cells (~9 s); the other grid tests stay fast
def test_every_cell_is_a_valid_experiment_with_its_seeds_recipe():
    names = set()
    for name in read_grid()["cells"]:
        params = params_of(name)
        names.add(run_name(params))
        assert load_experiment(params).experiment.recipe == "seed"
    assert len(names) == len(read_grid()["cells"])  # no two cells are the same run


def test_every_published_cell_of_the_seeds_has_a_grid_cell():
    cells = read_grid()["cells"].values()
    trained = {(c["method"], c["backbone"], c["dataset"], c["crop"]) for c in cells if c["set"].get("epochs") != 0}
    for path in sorted((REPO / PUBLISHED).glob("*.yaml")):
        seed = yaml.safe_load(path.read_text())
        if seed["method"] not in load_recipes():
            continue
        for dataset, crops in seed["recall"].items():
            for crop, backbones in crops.items():
                for backbone in backbones:
                    assert (seed["method"], backbone, dataset, crop) in trained, (path.name, backbone, dataset, crop)


def test_a_cell_takes_the_recipes_per_dataset_values_and_its_own_changes():
    assert params_of("cgd-resnet50-cub-uncropped-s0")["cgd"]["per_dataset"]["cub"]["gd_config"] == "MG"
    cfg = load_experiment(params_of("cgd-resnet50-cub-uncropped-s0")).config
    assert cfg.gd_config == "MG" and cfg.lr == 0.0001 and cfg.epochs == 20
    params = params_of("unifiedproxy-resnet50-car-uncropped-loss_proxy_anchor-s0")
    assert params["unifiedproxy"]["loss"] == "proxy_anchor" and params["train"]["pretrained"] is True
    assert params["prepare"]["jpeg_quality"] == 75 and params["embed"]["precision"] == "fp32"
    baseline = params_of("cgd-resnet50-car-uncropped-epochs_0-s0")
    assert baseline["cgd"]["epochs"] == 0


def test_dvc_exp_run_options_give_the_grid_cells_run(capsys):
    name = "normsoftmax-resnet50-cub-cropped-s0"
    assert main(["sets", name]) == 0
    options = capsys.readouterr().out.split()
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for flag, option in zip(options[::2], options[1::2]):
        assert flag == "-S"
        key, value = option.strip("'").split("=", 1)
        *sections, leaf = key.split(".")
        target = params
        for part in sections:
            target = target[part]
        assert leaf in target or not sections, f"-S {key} would add a key dvc exp run refuses"
        target[leaf] = yaml.safe_load(value)
    assert run_name(params) == run_name(params_of(name))


def test_sets_options_cover_every_key_of_the_sections():
    params = params_of("cgd-resnet50-car-uncropped-s0")
    options = dvc_sets({**params, "cgd": {"lr": 0.1, "lr_milestones": [0.6, 0.8]}}, ("cgd",))
    assert "cgd.lr_milestones=[0.6, 0.8]" in options and "cgd.lr=0.1" in options


def test_bad_recipes_and_names_are_refused_in_one_line(tmp_path):
    (tmp_path / "x.yaml").write_text(yaml.safe_dump({"method": "cgd", "section": {}, "cels": []}))
    with pytest.raises(DmlbenchError, match=r"unknown key\(s\) \['cels'\]"):
        load_recipes(tmp_path)
    (tmp_path / "x.yaml").write_text(yaml.safe_dump({"method": "cgd", "section": {}, "settings": {"data": {}}}))
    with pytest.raises(DmlbenchError, match="settings may fix only"):
        load_recipes(tmp_path)
    cell = {"backbone": "resnet50", "dataset": "car", "crop": "uncropped"}
    (tmp_path / "x.yaml").write_text(yaml.safe_dump({"method": "cgd", "section": {}, "cells": [cell, cell]}))
    with pytest.raises(DmlbenchError, match="cell cgd-resnet50-car-uncropped-s0 is listed twice"):
        grid_cells(load_recipes(tmp_path), {})
    with pytest.raises(DmlbenchError, match="did you mean cgd-resnet50-car-uncropped-s0"):
        params_of("cgd-resnet50-car-uncroped-s0", GRID_PARAMS, RECIPES_DIR)
