"""The one validated object a stage gets: which experiment, its method and section, and every stage section.

Built and cross-checked once by ``dmlbench.pipeline.experiment.load_experiment`` (it needs the method, backbone and
dataset registries, which sit above this package); everything below the stages takes it, or the part it needs.
"""

import re
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from dmlbench.params.load import check_seed, require
from dmlbench.params.sections import (ComplexityConfig, DataConfig, EmbedConfig, EvaluateConfig, PrepareConfig,
                                      SyntheticConfig, TablesConfig, TrainConfig)

EXPERIMENT_KEYS = ("method", "backbone", "dataset", "crop", "seed", "recipe")  # params.yaml's top level
CROPS = ("uncropped", "cropped")
NAME_PART = re.compile(r"[A-Za-z0-9_.+]+")  # what a part of a run's name may hold (it is part of file names)


@dataclass(frozen=True)
class Experiment:
    """Which method, backbone, dataset and crop one run uses, its seed and its recipe label (params top level)."""

    method: str
    backbone: str
    dataset: str
    crop: Literal["uncropped", "cropped"]
    seed: int
    recipe: str = "demo"  # a label: demo, seed (the seeds' settings) or a name of the user's own

    def __post_init__(self) -> None:
        check_seed(self.seed, "seed")
        require(bool(NAME_PART.fullmatch(self.recipe)),
                f"recipe must be a name of letters, digits, '_', '.', '+' (it is part of file names), got "
                f"{self.recipe!r}")


@dataclass(frozen=True)
class ExperimentParams:
    """All of params.yaml, validated: the experiment, its method and section, the K list, every stage section."""

    experiment: Experiment
    method: Any  # the dmlbench.methods.Method named by experiment.method
    config: Any  # its validated section for experiment.dataset (per_dataset overrides applied)
    configs: Mapping[str, Any]  # the same section for every dataset (the complexity grid builds each cell's)
    recall_ks: tuple[int, ...]  # evaluate.recall_ks, or the dataset's published K list when that is null
    recall_ks_source: Literal["params", "dataset"]
    data: DataConfig
    synthetic: SyntheticConfig
    prepare: PrepareConfig
    train: TrainConfig
    embed: EmbedConfig
    evaluate: EvaluateConfig
    complexity: ComplexityConfig
    tables: TablesConfig

    @property
    def variant(self) -> str:
        """The method's label for its section (e.g. CGD's "SG"), part of the run's name."""
        return self.method.describe(self.config)
