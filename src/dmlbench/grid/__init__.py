"""The seeds' benchmark grid: recipe files -> cells -> each cell's full params.

``benchmarks/recipes/<method>.yaml`` holds a seed's recipe (its method section, the other sections it fixes, and
one entry per cell of its published tables). ``benchmarks/params.yaml`` holds what every cell shares (``base``) and
the cells themselves, derived from the recipes (``python -m dmlbench.grid write``), because DVC's ``foreach`` reads
one dict. A cell's params are: ``base``, then the recipe's ``settings``, then the method section with the cell's
``set``, then the cell's method/backbone/dataset/crop/seed and ``recipe: seed``.

``python -m dmlbench.grid sets <cell>`` prints the same params as ``dvc exp run -S`` options, so the single-experiment
pipeline can run any cell's recipe.
"""

import copy
import difflib
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from dmlbench import atomic
from dmlbench.errors import DmlbenchError
from dmlbench.identity import RunPaths
from dmlbench.params.experiment import EXPERIMENT_KEYS
from dmlbench.params.load import PER_DATASET, flow_yaml
from dmlbench.pipeline.prepare import raw_folder

RECIPES_DIR = Path("benchmarks/recipes")
GRID_PARAMS = Path("benchmarks/params.yaml")
GRID_PREPARED = Path("benchmarks/prepared")  # one folder per dataset-crop, shared by its cells
GRID_RUNS = Path("benchmarks/runs")  # one folder per cell: model, provenance, checkpoint, embeddings, logs
GRID_CHECKPOINTS = Path("benchmarks/checkpoints")  # resume scratch files, git-ignored, never cached
GRID_METRICS = Path("benchmarks/metrics")  # one metrics file per cell (git-tracked, what the tables read)
RECIPE_KEYS = {"method", "seeds", "settings", "section", "cells", "baselines"}
CELL_KEYS = {"backbone", "dataset", "crop", "set", "seeds"}
GRID_SECTIONS = ("prepare", "train", "embed", "evaluate")  # the sections a recipe may fix
RECIPE_LABEL = "seed"  # the cells' `recipe` label: their rows say "seed recipe"


def load_recipes(folder: Path = RECIPES_DIR) -> dict[str, dict]:
    """Every recipe file in ``folder``, by method, each checked for its keys."""
    recipes = {}
    for path in sorted(Path(folder).glob("*.yaml")):
        recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(recipe, dict) or not isinstance(recipe.get("method"), str):
            raise DmlbenchError(f"{path}: a recipe is a mapping with a `method` name: see benchmarks/recipes/cgd.yaml")
        unknown = set(recipe) - RECIPE_KEYS
        if unknown:
            raise DmlbenchError(f"{path}: unknown key(s) {sorted(unknown)} (allowed: {sorted(RECIPE_KEYS)})")
        bad = set(recipe.get("settings") or {}) - set(GRID_SECTIONS)
        if bad:
            raise DmlbenchError(f"{path}: settings may fix only {', '.join(GRID_SECTIONS)}, not {sorted(bad)}")
        recipes[recipe["method"]] = {**recipe, "path": str(path)}
    return recipes


def cell_name(method: str, cell: dict, seed: int) -> str:
    """``<method>-<backbone>-<dataset>-<crop>[-<k>_<v>...]-s<seed>``: readable and unique within the grid."""
    parts = [method, cell["backbone"], cell["dataset"], cell["crop"]]
    # DVC reads a param path "cells.<name>" split at dots, so a value's dot becomes "p" (margin 0.2: margin_0p2).
    parts += [f"{k}_{v}".replace(".", "p") for k, v in sorted((cell.get("set") or {}).items())]
    return "-".join(str(p) for p in parts) + f"-s{seed}"


def data_key(dataset: str, crop: str, prepare: dict, base_prepare: dict) -> str:
    """``<dataset>-<crop>``, plus a short hash when a recipe prepares the images otherwise than ``base``."""
    if prepare == base_prepare:
        return f"{dataset}-{crop}"
    return f"{dataset}-{crop}-" + hashlib.sha256(json.dumps(prepare, sort_keys=True).encode()).hexdigest()[:6]


def grid_cells(recipes: dict[str, dict], base_prepare: dict) -> dict[str, dict]:
    """Every cell of every recipe, one per seed, plus an untrained baseline cell per (backbone, dataset, crop)
    where the recipe names its ``baselines`` overrides (e.g. epochs 0)."""
    cells: dict[str, dict] = {}
    for method, recipe in sorted(recipes.items()):
        prepare = {**base_prepare, **(recipe.get("settings") or {}).get("prepare", {})}
        entries = list(recipe.get("cells") or [])
        if recipe.get("baselines"):
            shapes: dict[tuple, dict] = {}
            for c in entries:  # the first cell of each shape: an untrained network has no loss to tell apart
                shapes.setdefault((c["backbone"], c["dataset"], c["crop"]), c)
            entries += [{**c, "set": {**(c.get("set") or {}), **recipe["baselines"]}, "seeds": [0]}
                        for c in shapes.values()]
        for cell in entries:
            unknown = set(cell) - CELL_KEYS
            if unknown:
                raise DmlbenchError(f"{recipe['path']}: cell {cell} has unknown key(s) {sorted(unknown)} "
                                    f"(allowed: {sorted(CELL_KEYS)})")
            for seed in cell.get("seeds", recipe.get("seeds", [0])):
                name = cell_name(method, cell, seed)
                if name in cells:
                    raise DmlbenchError(f"{recipe['path']}: cell {name} is listed twice")
                cells[name] = {"method": method, "backbone": cell["backbone"], "dataset": cell["dataset"],
                               "crop": cell["crop"], "seed": seed, "set": dict(cell.get("set") or {}),
                               "data": data_key(cell["dataset"], cell["crop"], prepare, base_prepare),
                               "changes": ", ".join(f"{k}={v}" for k, v in (cell.get("set") or {}).items())
                               or "none"}
    return cells


def cell_params(base: dict, recipe: dict, cell: dict) -> dict[str, Any]:
    """The full params.yaml-shaped dict of ``cell``: base, the recipe's settings, its section + the cell's set."""
    params = copy.deepcopy(base)
    for section, values in (recipe.get("settings") or {}).items():
        params[section] = {**params.get(section, {}), **values}
    section = copy.deepcopy(recipe["section"])
    for key, value in cell["set"].items():
        section[key] = value
        for overrides in (section.get(PER_DATASET) or {}).values():  # the cell's value wins over per-dataset ones
            overrides.pop(key, None)
    params[cell["method"]] = section
    params.update({k: cell[k] for k in EXPERIMENT_KEYS if k != "recipe"}, recipe=RECIPE_LABEL)
    return params


def read_grid(path: Path = GRID_PARAMS) -> dict:
    """benchmarks/params.yaml: ``base`` and ``cells``."""
    if not Path(path).is_file():
        raise DmlbenchError(f"{path} not found: run python -m dmlbench.grid write")
    grid = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(grid.get("base"), dict) or not isinstance(grid.get("cells"), dict):
        raise DmlbenchError(f"{path} must hold `base` and `cells` mappings: run python -m dmlbench.grid write")
    return grid


def params_of(name: str, grid_path: Path = GRID_PARAMS, recipes_dir: Path = RECIPES_DIR) -> dict[str, Any]:
    """The full params of the grid cell ``name``."""
    return load_cell(name, grid_path, recipes_dir)[0]


def load_cell(name: str, grid_path: Path = GRID_PARAMS, recipes_dir: Path = RECIPES_DIR) -> tuple[dict, dict]:
    """(the full params, the ``cells:`` entry) of the grid cell ``name``; an unknown name gets the closest one."""
    grid = read_grid(grid_path)
    if name not in grid["cells"]:
        close = difflib.get_close_matches(name, grid["cells"], n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise DmlbenchError(f"no grid cell {name!r} in {grid_path}{hint}: `dvc stage list benchmarks/dvc.yaml` "
                            f"lists them")
    cell = grid["cells"][name]
    return cell_params(grid["base"], load_recipes(recipes_dir)[cell["method"]], cell), cell


def cell_paths(name: str) -> RunPaths:
    """Where the cell ``name`` keeps its files. benchmarks/dvc.yaml declares the run folder and the metrics file;
    the checkpoint is a scratch file for resuming a killed cell, outside the outs (DVC deletes a stage's outs before
    it runs, and keeping them with ``persist`` would switch off the run-cache that lets machines share cells)."""
    folder = GRID_RUNS / name
    return RunPaths(model=folder / "model.pt", checkpoint=GRID_CHECKPOINTS / name / "train.pt",
                    embeddings=folder / "embeddings.pt", metrics=GRID_METRICS / f"{name}.json")


def render_generated(cells: dict[str, dict], base: dict, recipes: dict[str, dict]) -> str:
    """The ``datasets:`` and ``cells:`` blocks of benchmarks/params.yaml, one flow mapping per line."""
    lines = ["# Below: written by `python -m dmlbench.grid write` from benchmarks/recipes/*.yaml; edit those.",
             "datasets:"]
    datasets = {}
    for cell in cells.values():
        prepare = cell_params(base, recipes[cell["method"]], cell)["prepare"]
        datasets[cell["data"]] = {"dataset": cell["dataset"], "crop": cell["crop"],
                                  "raw": str(raw_folder(cell["dataset"], base["data"]["root"])), "prepare": prepare}
    lines += [f"  {key}: {flow_yaml(entry)}" for key, entry in sorted(datasets.items())]
    lines.append("cells:")
    lines += [f"  {name}: {flow_yaml(cell)}" for name, cell in cells.items()]
    return "\n".join(lines) + "\n"


def write_grid(grid_path: Path = GRID_PARAMS, recipes_dir: Path = RECIPES_DIR) -> str:
    """Rewrite the generated blocks of ``grid_path`` from the recipes (the text before them, ``base``, is kept)."""
    text = Path(grid_path).read_text(encoding="utf-8")
    head = text.split("\n# Below: written by", 1)[0].rstrip("\n") + "\n\n"
    base = yaml.safe_load(head)["base"]
    recipes = load_recipes(recipes_dir)
    updated = head + render_generated(grid_cells(recipes, base["prepare"]), base, recipes)
    atomic.write_text(grid_path, updated)  # a failed run never leaves half a params file
    return updated


def dvc_sets(params: dict[str, Any], sections: tuple[str, ...]) -> list[str]:
    """``-S key=value`` options for ``dvc exp run`` that set every leaf of ``sections`` and the top-level keys."""
    options = []
    for key in EXPERIMENT_KEYS:
        options += ["-S", f"{key}={params[key]}"]
    for section in sections:
        for key, value in params[section].items():
            if key == PER_DATASET:
                continue
            shown = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()
            options += ["-S", f"{section}.{key}={shown}"]
    return options
