"""LREC's per-dataset input normalisation: the seed recipe and params.yaml carry the seed lineage's published
mean/std for CARS, CUB, SOP and In-shop; folder and synthetic keep prepare's measured statistics."""

from pathlib import Path

import pytest

from dmlbench.grid import cell_params, load_recipes, read_grid
from dmlbench.methods import METHODS
from dmlbench.methods.lrec import DatasetNormalization
from dmlbench.models.backbones import IMAGENET
from dmlbench.params.load import load_params
from dmlbench.pipeline.experiment import method_config

# The seed lineage's constants as its REIR ancestor published them (rgb_mean / rgb_std per dataset, the same for
# both crops); written out here from SPEC.md "LREC (ancestor)", not read from the recipe under test.
SEED = {
    "car": ((0.4853, 0.4965, 0.4295), (0.2237, 0.2193, 0.2568)),
    "cub": ((0.4707, 0.4601, 0.4549), (0.2767, 0.2760, 0.2850)),
    "sop": ((0.5807, 0.5396, 0.5044), (0.2901, 0.2974, 0.3095)),
    "isc": ((0.8324, 0.8109, 0.8041), (0.2206, 0.2378, 0.2444)),
}


def _recipe_config(dataset: str, crop: str = "uncropped"):
    recipe = load_recipes()["lrec"]
    cell = {"method": "lrec", "backbone": "resnet18", "dataset": dataset, "crop": crop, "seed": 0,
            "set": {"resize": "square"} if crop == "cropped" else {}}
    return method_config(cell_params(read_grid()["base"], recipe, cell), "lrec", dataset)[1]


@pytest.mark.parametrize("dataset", sorted(SEED))
def test_every_seed_recipe_cell_normalises_with_the_seeds_constants(dataset):
    crops = ["uncropped", "cropped"] if dataset in ("car", "cub") else ["uncropped"]
    for crop in crops:
        cfg = _recipe_config(dataset, crop)
        assert cfg.normalization == "dataset"
        assert (cfg.mean, cfg.std) == SEED[dataset]  # exact: the same decimal literals
        # The config's values win: no prepared folder (and no image_stats.json) is read.
        norm = METHODS["lrec"].normalization(cfg, IMAGENET, Path("no-prepared-folder"))
        assert isinstance(norm, DatasetNormalization) and (norm.mean, norm.std) == SEED[dataset]


@pytest.mark.parametrize("dataset", ["folder", "synthetic"])
def test_folder_and_synthetic_keep_prepares_measured_statistics(dataset, tmp_path):
    cfg = _recipe_config(dataset)
    assert cfg.mean is None and cfg.std is None  # null: the normalisation hook reads image_stats.json
    (tmp_path / "image_stats.json").write_text('{"mean": [0.1, 0.2, 0.3], "std": [0.4, 0.5, 0.6]}')
    norm = METHODS["lrec"].normalization(cfg, IMAGENET, tmp_path)
    assert (norm.mean, norm.std) == ((0.1, 0.2, 0.3), (0.4, 0.5, 0.6))


@pytest.mark.parametrize("dataset", sorted(SEED))
def test_params_yaml_per_dataset_holds_the_same_constants(dataset):
    params = load_params(Path(__file__).parents[2] / "params.yaml")
    cfg = method_config(params, "lrec", dataset)[1]
    assert (cfg.mean, cfg.std) == SEED[dataset]
