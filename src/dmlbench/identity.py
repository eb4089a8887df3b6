"""A run's identity and every per-run path: one name, computed in one place, so runs never overwrite each other.

A run is named ``<method>-<variant>-<backbone>-<dataset>-<crop>-<recipe>-s<seed>-<digest>``; the digest is a short
hash of every other param that shapes the trained weights (the method's whole section and IDENTITY_PARAMS), so two
runs that differ in any of them (a margin, a learning rate, pretrained weights) get two names.
"""

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dmlbench.config import check_seed, plain, require

# Params outside the method's section that shape the weights: part of the digest, hence listed by every stage
# that computes a run name (tests/test_dvc_yaml.py checks dvc.yaml against this tuple).
IDENTITY_PARAMS = ("train.pretrained", "train.precision", "prepare.max_side", "prepare.jpeg_quality", "train.select",
                   "train.val_fraction")
# Keys that joined the identity after runs existed enter the digest only when they take another value than those
# runs had, so the existing runs keep their names. val_fraction shapes the weights only under best_val.
LATER_KEYS = {"train.select": lambda values: values["train.select"] in (None, "last"),
              "train.val_fraction": lambda values: values["train.select"] != "best_val"}
NAME_PART = re.compile(r"[A-Za-z0-9_.+]+")


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
class Run:
    """One training run: the experiment, the method's variant label and the digest of the rest."""

    experiment: Experiment
    variant: str
    digest: str

    @property
    def name(self) -> str:
        e = self.experiment
        variant = safe_part(self.variant)  # "-" separates the name's parts: "2048-d" -> "2048_d"
        return f"{e.method}-{variant}-{e.backbone}-{e.dataset}-{e.crop}-{e.recipe}-s{e.seed}-{self.digest}"

    @property
    def paths(self) -> "RunPaths":
        return RunPaths.of(self.name)

    def record(self) -> dict:
        """What files of this run carry to say whose they are (compared by embed and evaluate)."""
        return {**dataclasses.asdict(self.experiment), "variant": self.variant, "digest": self.digest,
                "name": self.name}


def identity_values(params: dict[str, Any]) -> dict[str, Any]:
    """The values of IDENTITY_PARAMS in ``params`` (absent keys as None; LATER_KEYS left out at their old value)."""
    values = {}
    for key in IDENTITY_PARAMS:
        section, name = key.split(".")
        values[key] = (params.get(section) or {}).get(name)
    return {k: v for k, v in values.items() if not (k in LATER_KEYS and LATER_KEYS[k](values))}


def make_run(exp: Experiment, variant: str, method_config, params: dict[str, Any]) -> Run:
    """The run of ``exp`` with ``method_config`` (the validated section) and the identity params of ``params``."""
    shaped = {"method": plain(dataclasses.asdict(method_config)), **plain(identity_values(params))}
    digest = hashlib.sha256(json.dumps(shaped, sort_keys=True).encode()).hexdigest()[:8]
    return Run(exp, variant, digest)


def safe_part(text: str) -> str:
    """``text`` with every character a file name should not hold replaced by '_' (variants go into names)."""
    return "".join(c if NAME_PART.fullmatch(c) else "_" for c in text) or "_"


@dataclass(frozen=True)
class RunPaths:
    """Where a run's artifacts live; dvc.yaml declares the folders (tests/test_dvc_yaml.py checks them)."""

    model: Path
    checkpoint: Path
    embeddings: Path
    metrics: Path

    @classmethod
    def of(cls, name: str) -> "RunPaths":
        return cls(model=Path("models") / name / "model.pt",
                   checkpoint=Path("checkpoints") / name / "train.pt",
                   embeddings=Path("embeddings") / name / "embeddings.pt",
                   metrics=RUNS_DIR / f"{name}.json")


RUNS_DIR = Path("metrics/runs")  # one metrics file per run; the tables stage renders every file here
# The current experiment's view, overwritten by each run (what `dvc exp show`, `dvc metrics diff` and `dvc plots
# diff` compare between experiments); every run's own files stay under RunPaths.
LIVE_DIR = Path("dvclive")
TRAINING_FIGURE = Path("plots/training.png")
RECALL_CURVE = Path("plots/recall_at_k.csv")
# The pictures stage's PNGs of the current run (a sample of queries, the worst queries, the Recall@K curve).
QUERIES_PICTURE = Path("plots/queries.png")
WORST_PICTURE = Path("plots/worst_queries.png")
RECALL_PICTURE = Path("plots/recall_at_k.png")
SUMMARY = Path("metrics/summary.json")
COMPLEXITY_DIR = Path("metrics/complexity")


def prepared_dir(dataset: str, crop: str) -> Path:
    """data/prepared/<dataset>-<crop>: the prepare stage's out in dvc.yaml (templated there the same way)."""
    return Path("data/prepared") / f"{dataset}-{crop}"
