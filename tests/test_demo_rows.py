"""python -m dmlbench.demo_rows: the README's demo rows from one command; each committed row is one of its rows."""

import json
from pathlib import Path

import pytest
import yaml

from dmlbench import demo_rows
from dmlbench.errors import DmlbenchError
from dmlbench.identity import make_run
from dmlbench.pipeline.experiment import load_experiment
from dmlbench.pipeline.run_name import identity_values

REPO = Path(__file__).resolve().parents[1]
COMMITTED = sorted((REPO / "metrics/runs").glob("*.json"))


def row_names(data: dict[tuple[str, str], str]) -> dict[str, str]:
    """Each row's run name, given the prepared data's digest per (dataset, crop)."""
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    names = {}
    for row, params in demo_rows.check_rows(base, demo_rows.read_rows(REPO / demo_rows.ROWS_FILE)).items():
        xp = load_experiment(params)
        digest = data[(xp.experiment.dataset, xp.experiment.crop)]
        names[row] = make_run(xp.experiment, xp.variant, xp.config, identity_values(xp, digest)).name
    return names


def test_the_rows_file_makes_exactly_the_committed_demo_rows():
    """The README's demo table renders metrics/runs/: every file there is one row's run, every row has its file."""
    records = [json.loads(p.read_text()) for p in COMMITTED]
    data = {(r["run"]["dataset"], r["run"]["crop"]): r["run"]["identity"]["data"] for r in records
            if isinstance(r["run"].get("identity"), dict)}
    names = row_names(data)
    assert sorted(names.values()) == sorted(p.stem for p in COMMITTED)


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    rows = {"rows": {"plain": {}, "cropped": {"crop": "cropped"}, "nsm": {"method": "normsoftmax",
                                                                            "normsoftmax.epochs": 0}}}
    (tmp_path / "rows.yaml").write_text(yaml.safe_dump(rows))
    return tmp_path


def test_each_row_runs_with_its_params_the_plain_row_last_and_params_come_back(workspace):
    seen = []

    def repro():
        seen.append(yaml.safe_load(Path("params.yaml").read_text()))
        return 0

    original = Path("params.yaml").read_text()
    demo_rows.run_rows([], workspace / "rows.yaml", repro)
    base = yaml.safe_load(original)
    assert [(p["method"], p["crop"]) for p in seen] == [("cgd", "cropped"), ("normsoftmax", "uncropped"),
                                                       ("cgd", "uncropped")]
    assert seen[1]["normsoftmax"] == {**base["normsoftmax"], "epochs": 0} and seen[2] == base
    assert Path("params.yaml").read_text() == original  # byte for byte, comments included


def test_a_failed_row_stops_names_what_to_rerun_and_restores_params(workspace):
    original = Path("params.yaml").read_text()
    calls = []

    def repro():
        calls.append(1)
        return 0 if len(calls) == 1 else 3

    with pytest.raises(DmlbenchError, match=r"^demo row nsm: dvc repro failed \(exit status 3; .* rerun with --only "
                                            r"nsm plain$"):
        demo_rows.run_rows([], workspace / "rows.yaml", repro)
    assert Path("params.yaml").read_text() == original


@pytest.mark.parametrize("rows, only, message", [
    ({"bad": {"cgd.epochs": -1}}, [], "row bad: "),
    ({"bad": {"method": "nosuch"}}, [], "row bad: "),
    ({"bad": {"nosection.key": 1}}, [], "row bad sets nosection.key, but params.yaml has no section 'nosection'"),
    ({"ok": {}}, ["missing"], "no demo row 'missing' in"),
    ({"bad": [1, 2]}, [], "row bad must be a mapping of key -> value"),
])
def test_bad_rows_are_refused_before_anything_runs(workspace, rows, only, message):
    (workspace / "rows.yaml").write_text(yaml.safe_dump({"rows": rows}))
    with pytest.raises(DmlbenchError, match=message):
        demo_rows.run_rows(only, workspace / "rows.yaml", lambda: pytest.fail("nothing may run"))


def test_the_command_line_refuses_an_unknown_row_in_one_line(workspace):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "dmlbench.demo_rows", "--rows", "rows.yaml", "--only", "nosuch"],
                            cwd=workspace, capture_output=True, text=True)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "dmlbench: error: no demo row 'nosuch' in rows.yaml (rows: cropped, nsm, plain)\n"
