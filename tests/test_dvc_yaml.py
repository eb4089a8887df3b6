"""dvc.yaml agrees with the one place that names runs and their paths (src/dmlbench/identity.py)."""

from pathlib import Path

import pytest
import yaml

from dmlbench.identity import (COMPLEXITY_DIR, IDENTITY_PARAMS, LIVE_DIR, RECALL_CURVE, RUNS_DIR, SUMMARY,
                               TRAINING_FIGURE, RunPaths)
from dmlbench.params.experiment import EXPERIMENT_KEYS

REPO = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
EXPERIMENT = [*EXPERIMENT_KEYS, "${method}"]  # params.yaml's top level and the method's section
# Which stage writes each per-run path, and each path of the current run's view.
WRITERS = {"model": "train", "checkpoint": "train", "embeddings": "embed", "metrics": "evaluate"}
VIEWS = {LIVE_DIR / "plots" / "metrics": "train", LIVE_DIR / "metrics.json": "train", TRAINING_FIGURE: "train",
         SUMMARY: "evaluate", RECALL_CURVE: "evaluate", COMPLEXITY_DIR / "${method}.json": "complexity",
         RUNS_DIR / "x.json": "evaluate"}


def declared(stage: str) -> list[Path]:
    """Every out, metric and plot path of ``stage`` (with their persist flags checked below)."""
    entries = [e for key in ("outs", "metrics", "plots") for e in STAGES[stage].get(key, [])]
    return [Path(e if isinstance(e, str) else next(iter(e))) for e in entries]


def under(path: Path, outs: list[Path]) -> bool:
    return any(path == out or out in path.parents for out in outs)


@pytest.mark.parametrize("field, stage", sorted(WRITERS.items()))
def test_every_per_run_path_lies_under_the_writing_stages_out(field, stage):
    path = getattr(RunPaths.of("cgd-SG-resnet18-synthetic-uncropped-demo-s0-00000000"), field)
    assert under(path, declared(stage)), f"{path} is not under any out of stage {stage}: {declared(stage)}"


@pytest.mark.parametrize("path, stage", sorted(VIEWS.items(), key=str))
def test_current_run_views_are_declared(path, stage):
    assert under(path, declared(stage))


NAMING = ["train", "embed", "evaluate", "pictures"]  # the stages that compute the run's name


@pytest.mark.parametrize("stage", NAMING)
def test_stages_that_name_the_run_list_every_identity_param(stage):
    params = STAGES[stage]["params"]
    for key in [*EXPERIMENT, *IDENTITY_PARAMS]:
        section = key.split(".")[0]
        assert key in params or section in params, f"stage {stage} computes run names but does not list {key}"


@pytest.mark.parametrize("stage", NAMING)
def test_stages_that_name_the_run_depend_on_the_data_digest(stage):
    """The run's name holds the prepared data's digest (data/prepared/<set>/digest.json), so it is a dep."""
    deps = [d if isinstance(d, str) else next(iter(d)) for d in STAGES[stage]["deps"]]
    prepared = "data/prepared/${dataset}-${crop}"
    assert prepared in deps or f"{prepared}/digest.json" in deps


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_output_is_persistent_except_the_check_marker(stage):
    """A stage that fails must not have lost the previous outputs: DVC deletes non-persistent outs first."""
    entries = [e for key in ("outs", "metrics", "plots") for e in STAGES[stage].get(key, [])]
    for entry in entries:
        name = entry if isinstance(entry, str) else next(iter(entry))
        persist = not isinstance(entry, str) and entry[name].get("persist", False)
        assert persist or name == "params.checked", f"{stage}: {name} is not persist: true"


def test_the_check_stage_runs_first_and_reads_all_params():
    assert STAGES["check"]["params"] == [{"params.yaml": None}]
    assert "params.checked" in STAGES["synthesize"]["deps"]  # every other stage descends from synthesize
