"""sweeps/dvc.yaml: every project module a sweep stage imports is a dep; each stage's params name keys that exist."""

from pathlib import Path

import pytest
import yaml
from test_stage_deps import covered, project_files  # the same import walk as dvc.yaml's test

REPO = Path(__file__).resolve().parents[2]

STAGES = {name: stage.get("do", stage)
          for name, stage in yaml.safe_load((REPO / "sweeps/dvc.yaml").read_text())["stages"].items()}


@pytest.mark.parametrize("name", sorted(STAGES))
def test_every_imported_project_file_is_a_dep(name):
    stage = STAGES[name]
    script = REPO / stage["cmd"].split()[1]
    deps = [d if isinstance(d, str) else next(iter(d)) for d in stage["deps"]]
    missing = [str(p.relative_to(REPO)) for p in project_files(script) if not covered(p, deps)]
    assert not missing, f"sweeps/dvc.yaml:{name} imports but does not list {missing}"
    for dep in deps:
        if "${" not in dep and not dep.startswith("sweeps/"):  # the sweep's own outputs appear when it runs
            assert (REPO / dep).exists(), f"sweeps/dvc.yaml:{name} lists {dep}, which does not exist"


def test_the_trial_and_tuned_stages_iterate_over_the_sweep_files_keys():
    params = yaml.safe_load((REPO / "sweeps/params.yaml").read_text())
    assert set(params["methods"]) <= {t["method"] for t in params["trials"].values()}
    assert len(params["trials"]) == params["budget"] * len(params["methods"])
