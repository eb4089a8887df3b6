"""A run's identity and every per-run path: one name, computed in one place, so runs never overwrite each other.

A run is named ``<method>-<variant>-<backbone>-<dataset>-<crop>-<recipe>-s<seed>-<digest>``; the digest is a short
hash of everything else that shapes the trained weights: the method's whole validated section, IDENTITY_PARAMS as
they run (defaults filled in, ``auto`` resolved) and the digest of the prepared data, so two runs that differ in any
of them (a margin, a learning rate, pretrained weights, a GPU's bf16, other images) get two names, and a default
written out or left out gives the same one.
"""

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from dmlbench.params.experiment import NAME_PART, Experiment
from dmlbench.params.load import plain

# Params outside the method's section that shape the weights, as they run (``auto`` resolved by
# dmlbench.pipeline.run_name): part of the digest, hence listed by every stage that computes a run name
# (tests/test_dvc_yaml.py checks dvc.yaml against this tuple). The prepared data's digest joins them.
IDENTITY_PARAMS = ("train.pretrained", "train.precision", "train.device", "prepare.max_side", "prepare.jpeg_quality",
                   "train.select", "train.val_fraction", "train.select_metric")


@dataclass(frozen=True)
class Run:
    """One training run: the experiment, the method's variant label and the digest of the rest."""

    experiment: Experiment
    variant: str
    digest: str
    # What the digest hashes besides the method's section (resolved IDENTITY_PARAMS, the data's digest): the
    # metrics file records it, so the tables can tell whether the current code still gives the run this name.
    identity: Mapping[str, Any] = dataclasses.field(default_factory=dict, compare=False)

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


def make_run(exp: Experiment, variant: str, method_config, identity: Mapping[str, Any]) -> Run:
    """The run of ``exp`` with ``method_config`` (the validated section) and ``identity``: the resolved values of
    IDENTITY_PARAMS and the prepared data's digest (dmlbench.pipeline.run_name.identity_values)."""
    shaped = {"method": plain(dataclasses.asdict(method_config)), **plain(dict(identity))}
    digest = hashlib.sha256(json.dumps(shaped, sort_keys=True).encode()).hexdigest()[:8]
    return Run(exp, variant, digest, dict(identity))


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
