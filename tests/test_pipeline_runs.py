"""End to end: runs that differ in a method param or a seed keep their own files and table rows."""

import sys
from pathlib import Path

import pytest
from pipeline_repo import BUT_PICTURES, demo_record, make_repo, run_records, set_params, sh

@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return make_repo(tmp_path_factory)


@pytest.mark.slow
def test_runs_differing_in_a_method_param_or_seed_keep_their_files_and_rows(repo):
    demo = demo_record(repo)
    for changes in ({"cgd.margin": 0.2}, {"seed": 1}):
        set_params(repo, **changes)
        sh(repo, sys.executable, "-m", "dvc", "repro", BUT_PICTURES)
    set_params(repo)
    sh(repo, sys.executable, "-m", "dvc", "repro", BUT_PICTURES)  # back to the demo: resumes its finished checkpoint
    names = [n for n in run_records(repo) if n.startswith("cgd-SG-resnet18-synthetic-uncropped-")]
    assert len(names) == 3 and demo_record(repo)["metrics"] == demo["metrics"]
    assert {run_records(repo)[n]["params"]["method"]["margin"] for n in names} == {0.1, 0.2}
    assert any("-demo-s1-" in n for n in names)
    block = (repo / "README.md").read_text().split("<!-- tables:start -->")[1].split("####", 2)[1]
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in block.splitlines()
            if line.startswith("| cgd ") and "uncropped" in line]
    # Seeds 0 and 1 of the demo params share a row (mean ± sd, n = 2); the margin-0.2 run has its own, and both
    # rows, whose visible columns match, name their run digest.
    assert sorted(row[6] for row in rows) == ["1", "2"]
    two = next(row for row in rows if row[6] == "2")
    assert ", seeds 0, 1, run " in two[5] and " ± " in two[7]
    for name in names:  # every run kept its own files
        assert (repo / "models" / name / "model.pt").is_file() and (repo / "embeddings" / name).is_dir()
