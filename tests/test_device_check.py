"""benchmarks/device_check.py: the --tiny run on the CPU, its rows' failure isolation and budgets, and the pieces
of benchmarks/train_speed.py it reuses."""

import re
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import check_rows  # noqa: E402
import device_check  # noqa: E402
import train_speed  # noqa: E402
from dmlbench.methods import METHODS  # noqa: E402


def rows_by_check(rows) -> dict:
    return {row.check: row for row in rows}


def test_seed_recipe_is_the_first_cell_of_the_recipe_file():
    params, cell = train_speed.seed_recipe("lrec")
    assert (cell["backbone"], cell["dataset"], cell["crop"]) == ("resnet18", "car", "uncropped")
    assert params["lrec"]["ensemble_size"] == 48 and params["train"]["precision"] == "fp32"
    assert params["train"]["deterministic"] is True and params["recipe"] == "seed"


def test_reshaped_scales_every_side_and_keeps_k_where_the_batch_allows():
    method, cfg, tcfg, backbone = train_speed.recipe_config("cgd", train_speed.Shape(image_size=32, batch_size=8))
    # The recipe's Resize(252) -> RandomCrop(224) at crop 32: 252 x 32 / 224 = 36; Resize(224) -> 32.
    assert (cfg.train_resize, cfg.train_crop, cfg.test_resize) == (36, 32, 32)
    assert (cfg.classes_per_batch, cfg.images_per_class) == (2, 4)  # K = min(4, 8 // 2), P = 8 // K
    assert backbone == "resnet50" and tcfg.pretrained is False  # random init: no download on a device machine
    _, lrec, _, _ = train_speed.recipe_config("lrec", train_speed.Shape(image_size=32, batch_size=4, learners=3))
    assert (lrec.train_resize, lrec.train_crop, lrec.batch_size, lrec.ensemble_size) == (32, 32, 4, 3)


def test_first_difference_names_the_first_differing_leaf():
    a = {"metrics": {"recall@1": 0.5, "map@r": 0.25}, "weights": {"w": torch.tensor([1.0, 2.0])}}
    assert device_check.first_difference(a, {**a}) is None
    b = {"metrics": {"recall@1": 0.5, "map@r": 0.2500001}, "weights": a["weights"]}
    assert device_check.first_difference(a, b) == "metrics.map@r: 0.25 vs 0.2500001"
    c = {**a, "weights": {"w": torch.tensor([1.0, 2.0 + 2**-20])}}
    assert device_check.first_difference(a, c) == "weights.w (tensors differ)"
    assert device_check.first_difference([1, 2], [1, 2, 3]) == ": [1, 2] vs [1, 2, 3]"


def test_a_row_over_its_share_of_the_budget_stops_and_the_next_row_still_runs():
    budget = check_rows.Budget(0.6, 2)  # the first row may use 0.6 s minus half a share (0.15 s) for the second
    device = check_rows.Lazy(lambda: torch.device("cpu"))
    start = time.monotonic()
    slow = check_rows.run_row(check_rows.Row("slow"), lambda row: time.sleep(5), budget, device)
    assert time.monotonic() - start < 2  # the alarm fired after 0.45 s, long before the 5 s sleep would end
    assert re.fullmatch(r"FAILED: RowTimeout: over its 0\.\d s share of the section's budget", slow.result)
    assert not slow.ok
    quick = check_rows.run_row(check_rows.Row("quick"), lambda row: None, budget, device)
    assert quick.result == "ok" and quick.ok
    spent = check_rows.run_row(check_rows.Row("late"), lambda row: None, check_rows.Budget(0, 1), device)
    assert spent.result == "skipped: the section's budget is spent" and not spent.ok


def test_a_failing_mode_marks_its_cell_and_the_row_measures_the_next():
    device = check_rows.Lazy(lambda: torch.device("cpu"))

    def work(row):
        check_rows.measure(row, "a", lambda: 1 / 0, device)
        check_rows.measure(row, "b", lambda: train_speed.Rate(12.34, 3 * 2**29), device, "peak")
    row = check_rows.run_row(check_rows.Row("modes"), work, check_rows.Budget(60, 1), device)
    assert row.cells == {"a": "error", "b": "12.3", "peak": "1.50"}  # 3 x 2^29 bytes = 1.5 GiB
    assert row.result == "FAILED: a: ZeroDivisionError: division by zero"
    assert check_rows.table([row], ("a", "b", "peak")).splitlines()[2] == (
        "| modes |  | error | 12.3 | 1.50 | FAILED: a: ZeroDivisionError: division by zero |")


def test_a_setup_failure_is_kept_and_reported_by_every_row_that_needs_it():
    calls = []

    def build():
        calls.append(1)
        raise OSError("disk full")
    data = check_rows.Lazy(build)
    for _ in range(2):
        with pytest.raises(RuntimeError, match="setup failed: OSError: disk full"):
            data.get()
    assert len(calls) == 1  # built once: a later row does not spend its budget on it again


def test_a_missing_method_fails_its_row_only_and_the_table_says_why(capsys):
    rows = device_check.main(["--tiny", "--sections", "train,determinism", "--methods", "nosuch",
                              "--det-method", "nosuch2"])
    out = capsys.readouterr().out
    assert [row.check for row in rows] == ["train nosuch", "determinism nosuch2"]
    assert all(row.result.startswith("FAILED: DmlbenchError: no seed recipe for 'nosuch") for row in rows)
    assert out.count("| FAILED: DmlbenchError: no seed recipe") == 2 and "0 of 2 rows ok" in out


def test_an_unknown_section_is_one_usage_line(capsys):
    with pytest.raises(SystemExit):
        device_check.parse_args(["--sections", "train,speed"])
    assert "unknown section(s) speed (choices: train, determinism, lrec)" in capsys.readouterr().err


@pytest.mark.slow  # every method's four modes, two tiny trainings and LREC's forms: tens of seconds on 2 cores
def test_tiny_run_fills_every_row_on_the_cpu(capsys):
    torch.use_deterministic_algorithms(False)
    rows = rows_by_check(device_check.main(["--tiny"]))
    assert torch.are_deterministic_algorithms_enabled() is False  # restored after the recipes' deterministic runs
    out = capsys.readouterr().out
    assert len(rows) == len(METHODS) + 1 + 3 and all(row.ok for row in rows.values()), out
    for name in METHODS:
        cells = rows[f"train {name}"].cells
        rates = [float(cells[c]) for c in device_check.COLUMNS[:4]]
        assert all(rate > 0 for rate in rates) and cells["peak GiB"] == "-"  # no GPU memory to report on the CPU
        assert rows[f"train {name}"].setting.startswith("resnet18, batch 4, 32 px, fp32, deterministic")
    assert rows["determinism cgd"].result.startswith("identical metrics, weights and embeddings (recall@1 ")
    assert "loop/fused" in rows["lrec loop fp32"].result and float(rows["lrec fused fp32"].cells["device img/s"]) > 0
    assert float(rows["lrec estimate fp32"].cells["peak GiB"]) > 0
    assert out.count("\n| ") == len(rows) + 1 and f"{len(rows)} of {len(rows)} rows ok" in out
