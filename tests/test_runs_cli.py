import json
import shutil
from pathlib import Path

from dmlbench.cli import main
from dmlbench.reporting.runs_frame import read_runs_csv

COMMITTED = Path(__file__).resolve().parents[1] / "metrics" / "runs"


def test_runs_prints_the_frame_and_writes_every_column_as_csv(tmp_path, capsys):
    folder = tmp_path / "metrics" / "runs"
    folder.mkdir(parents=True)
    files = sorted(COMMITTED.glob("*.json"))[:3]
    for path in files:
        shutil.copy(path, folder)
    assert main(["runs", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"3 run(s) of {folder}") and all(p.stem in out for p in files)
    assert main(["runs", "--root", str(tmp_path), "--csv", str(tmp_path / "runs.csv")]) == 0
    frame = read_runs_csv(tmp_path / "runs.csv")
    saved = json.loads(files[0].read_text())
    assert list(frame["name"]) == [p.stem for p in files]
    assert frame.loc[0, "recall@1"] == saved["metrics"]["recall@1"] and frame.loc[0, "seed"] == saved["run"]["seed"]


def test_runs_refuses_a_folder_without_runs_in_one_line(tmp_path, capsys):
    assert main(["runs", "--root", str(tmp_path), "--grid"]) == 2
    assert capsys.readouterr().err == (f"dmlbench: error: no {tmp_path / 'benchmarks' / 'metrics'}: run dmlbench runs "
                                       f"in a dmlbench workspace (or pass --root DIR)\n")
    (tmp_path / "benchmarks" / "metrics").mkdir(parents=True)
    assert main(["runs", "--root", str(tmp_path), "--grid"]) == 0
    assert capsys.readouterr().out == f"0 runs in {tmp_path / 'benchmarks' / 'metrics'}\n"
