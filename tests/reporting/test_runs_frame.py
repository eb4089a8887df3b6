import hashlib
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from dmlbench.errors import DmlbenchError
from dmlbench.reporting.runs_frame import load_runs_frame, read_runs_csv, runs_frame, write_runs_csv

COMMITTED = Path(__file__).resolve().parents[2] / "metrics" / "runs"


def record(name="cgd-SG-resnet18-car-uncropped-demo-s0-12345678", seed=0, **extra):
    """A metrics file as evaluate writes it (digest of digits: it must stay text through the CSV)."""
    run = {"method": "cgd", "variant": "SG", "backbone": "resnet18", "dataset": "car", "crop": "uncropped",
           "recipe": "demo", "seed": seed, "name": name, "digest": "12345678", "pretrained": False, "epochs": 3,
           "warmup_epochs": 0, "frozen_epochs": 0, "selection": "last"}
    return {"run": run, "params": {"train": {"lr": 0.1}},
            "metrics": {"recall@1": 0.5, "map@r": 0.25, "binary": {"recall@1": 0.375}},
            "intervals": {"metrics": {"recall@1": [0.45, 0.55], "binary": {"recall@1": [0.3, 0.45]}}},
            "provenance": {"device": "cuda", "device_name": "NVIDIA H200", "device_count": 2, "cpu_threads": 16,
                           "torch": "2.11.0", "cuda": "12.8", "cudnn": 91000, "git_commit": "abc+dirty",
                           "code_digest": "0123456789abcdef", "precision": "bf16", "deterministic": True,
                           "train_seconds": 42.5},
            "queries": 10, "gallery": 10, **extra}


def test_one_row_per_run_with_flat_metrics_intervals_and_provenance():
    frame = runs_frame([record(seed=1, name="zz"), record()])
    assert list(frame["seed"]) == [0, 1]  # sorted by name then seed
    row = frame.iloc[0]
    assert (row["recall@1"], row["recall@1.low"], row["recall@1.high"]) == (0.5, 0.45, 0.55)
    assert (row["binary.recall@1"], row["binary.recall@1.low"], row["binary.recall@1.high"]) == (0.375, 0.3, 0.45)
    assert pd.isna(row["map@r.low"]) and row["map@r"] == 0.25  # a metric without an interval
    assert (row["device"], row["devices"], row["cudnn"], row["commit"]) == ("NVIDIA H200", 2, 91000, "abc+dirty")
    assert row["digest"] == "12345678" and row["deterministic"] and row["train_seconds"] == 42.5
    # sha256 of the canonical JSON of the recorded params, first 8 hex digits
    assert row["params_digest"] == hashlib.sha256(b'{"train": {"lr": 0.1}}').hexdigest()[:8]


def test_the_frame_equals_the_committed_metrics_files():
    frame = load_runs_frame(COMMITTED).set_index("name")
    files = sorted(COMMITTED.glob("*.json"))
    assert len(frame) == len(files) > 0
    for path in files:
        saved = json.loads(path.read_text())
        row = frame.loc[saved["run"]["name"]]
        for key, value in saved["metrics"].items():
            for name, number in (value.items() if isinstance(value, dict) else [(None, value)]):
                column = f"{key}.{name}" if name else key
                assert row[column] == number, (path.name, column)  # the very float the file holds
        for key, value in saved.get("intervals", {}).get("metrics", {}).items():
            # dense metrics hold a pair; a feature's (NormSoftmax's binary codes) a mapping of metric -> pair
            for name, pair in (value.items() if isinstance(value, dict) else [(None, value)]):
                column = f"{key}.{name}" if name else key
                assert [row[f"{column}.low"], row[f"{column}.high"]] == pair, (path.name, column)
        assert pd.isna(row["commit"]) == (saved.get("provenance") is None)


def test_the_csv_round_trips(tmp_path):
    frame = runs_frame([record(), record(name="x", seed=2, provenance=None)])
    write_runs_csv(frame, tmp_path / "runs.csv")
    back = read_runs_csv(tmp_path / "runs.csv")
    pd.testing.assert_frame_equal(back, frame)  # dtypes included: the digest of digits stays text
    assert back.loc[0, "digest"] == "12345678" and pd.isna(back.loc[1, "commit"])


def test_committed_runs_round_trip_through_the_csv(tmp_path):
    frame = load_runs_frame(COMMITTED)
    write_runs_csv(frame, tmp_path / "runs.csv")
    pd.testing.assert_frame_equal(read_runs_csv(tmp_path / "runs.csv"), frame)


def test_an_empty_folder_gives_an_empty_frame_with_the_fixed_columns(tmp_path):
    frame = load_runs_frame(tmp_path)
    assert len(frame) == 0 and {"name", "digest", "commit", "stale"} <= set(frame.columns)


@pytest.mark.parametrize("bad", [[0.6, 0.4], [0.4, 1.5], "0.4"])
def test_a_malformed_interval_stops_with_one_line(bad):
    bad_record = record()
    bad_record["intervals"]["metrics"]["binary"]["recall@1"] = bad
    with pytest.raises(DmlbenchError, match=r"holds intervals\.metrics\.binary\.recall@1 = .*, not \[low, high\]"):
        runs_frame([bad_record])


def test_floats_are_not_rounded():
    frame = runs_frame([record(metrics={"recall@1": 1 / 3})])
    assert frame.loc[0, "recall@1"] == 1 / 3 and not math.isnan(frame.loc[0, "recall@1"])
