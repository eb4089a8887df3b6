import pytest

from dmlbench.errors import DmlbenchError
from dmlbench.reporting.staleness import NO_PROVENANCE
from dmlbench.reporting.tables import END, START, percent, recall_table, render_tables, replace_block

NO_IDENTITY = ("its metrics file does not record the identity values the current code names runs by: rerun it with "
               "the current code")

PUBLISHED = [{"source": "CGD seed", "method": "cgd",
              "complexity": {"resnet50": {"car": "26.86M | 10.64G"}},
              "recall": {"car": {"uncropped": {"resnet50": {"variant": "SG", "values": [86.4, 92.1, 95.6, 97.5]}}}}}]


def run(dataset, crop="uncropped", r1=0.5, **identity):
    facts = {"method": "cgd", "backbone": "resnet18", "dataset": dataset, "crop": crop, "variant": "SG",
             "recipe": "demo", "seed": 0, "digest": "0000aaaa", "pretrained": False, "epochs": 3,
             "warmup_epochs": 0, "frozen_epochs": 0, "selection": "last", **identity}
    facts["name"] = "-".join(str(facts[k]) for k in ("method", "variant", "backbone", "dataset", "crop", "recipe",
                                                      "seed", "digest"))
    return {"run": facts,
            "metrics": {"recall@1": r1, "recall@2": 0.6, "recall@4": 0.7, "recall@8": 0.8,
                        "map@r": 0.25, "r_precision": 0.3}}


def test_percent_and_missing():
    assert percent(0.8642) == "86.4"
    assert percent(None) == "—"


def test_recall_table_shows_runs_published_and_dashes():
    table = recall_table("car", [run("car", r1=0.8125)], PUBLISHED)
    lines = table.splitlines()
    assert [c.strip() for c in lines[0].split("|")[1:-1]] == [
        "Method", "Backbone", "Variant", "Crop", "Features", "Source", "n", "R@1", "R@2", "R@4", "R@8", "MAP@R",
        "R-Prec", "Run"]
    body = "\n".join(lines[2:])
    assert "| 81.2 " in body  # 0.8125 -> 81.25 -> '81.2' (round half to even)
    assert "CGD seed, published (best test epoch)" in body and "| 86.4 " in body
    # The seed's ResNet50 cell has not been run by dmlbench: a dash row says so.
    not_run = [line for line in lines if "dmlbench (not run)" in line]
    assert len(not_run) == 1 and not_run[0].count("—") == 8  # n, the six numbers and the run


def test_render_is_deterministic_and_skips_empty_demo():
    runs = [run("synthetic"), run("synthetic", "cropped", 0.9)]
    assert render_tables(runs, [], PUBLISHED) == render_tables(list(reversed(runs)), [], PUBLISHED)
    assert "Synthetic demo" not in render_tables([], [], PUBLISHED)
    assert "#### CARS196" not in render_tables(runs, [], PUBLISHED)  # the README shows a dataset once a run has it
    assert "#### CARS196" in render_tables([], [], PUBLISHED, datasets=("car",))  # the grid page: always


def test_replace_block_is_idempotent():
    text = f"intro\n{START}\nold\n{END}\noutro\n"
    once = replace_block(text, "new\n", "README.md")
    assert once == f"intro\n{START}\nnew\n{END}\noutro\n"
    assert replace_block(once, "new\n", "README.md") == once


def test_replace_block_needs_markers():
    with pytest.raises(DmlbenchError, match="needs exactly one"):
        replace_block("no markers", "x", "README.md")


def test_folder_runs_get_their_own_table():
    assert "Your own images" not in render_tables([run("synthetic")], [], PUBLISHED)
    assert "Your own images (folder)" in render_tables([run("folder")], [], PUBLISHED)


def test_binary_features_get_their_own_rows_on_both_sides():
    published = [{"source": "NormSoftmax seed", "method": "normsoftmax", "recall": {"car": {"uncropped": {
        "resnet50": {"variant": "2048-d", "values": [86.1, 91.9, 95.4, 97.4], "binary": [85.2, 91.6, 95.2, 97.3]}}}}}]
    ours = run("car", r1=0.5)
    ours["run"].update(method="normsoftmax", backbone="resnet50", variant="2048-d", epochs=4, warmup_epochs=1)
    ours["metrics"]["binary"] = {"recall@1": 0.375, "recall@2": 0.5, "recall@4": 0.625, "recall@8": 0.75,
                                 "map@r": 0.125, "r_precision": 0.25}
    lines = recall_table("car", [ours], published).splitlines()[2:]
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in lines]
    assert [(c[4], c[5], c[7]) for c in cells] == [
        ("dense", "dmlbench, demo recipe, from scratch, 1+3 epochs, last epoch", "50.0"),
        ("dense", "NormSoftmax seed, published (best test epoch)", "86.1"),
        ("binary", "dmlbench, demo recipe, from scratch, 1+3 epochs, last epoch", "37.5"),
        ("binary", "NormSoftmax seed, published (best test epoch)", "85.2")]
    assert cells[2][-3:] == ["12.5", "25.0", "0000aaaa†"]


def test_every_run_gets_a_row_and_look_alike_rows_name_their_run():
    runs = [run("car", r1=0.5), run("car", r1=0.6, seed=1, digest="1111bbbb"),
            run("car", r1=0.7, recipe="seed", pretrained=True, epochs=20, digest="2222cccc"),
            run("car", r1=0.4, variant="MG", digest="3333dddd")]
    lines = [line for line in recall_table("car", runs, PUBLISHED).splitlines() if "ResNet18" in line]
    sources = {c[7]: c[5] for c in ([x.strip() for x in line.split("|")[1:-1]] for line in lines)}
    assert len(lines) == 4
    assert sources["50.0"] == "dmlbench, demo recipe, from scratch, 3 epochs, last epoch, seed 0, run 0000aaaa"
    assert sources["60.0"] == "dmlbench, demo recipe, from scratch, 3 epochs, last epoch, seed 1, run 1111bbbb"
    assert sources["70.0"] == "dmlbench, seed recipe, ImageNet init, 20 epochs, last epoch"
    assert sources["40.0"] == "dmlbench, demo recipe, from scratch, 3 epochs, last epoch"  # its variant differs


def test_epochs_label_says_warm_up_and_frozen_epochs():
    from dmlbench.reporting.run_record import epochs_label

    assert epochs_label({"epochs": 12, "warmup_epochs": 0, "frozen_epochs": 0}) == "12 epochs"
    assert epochs_label({"epochs": 31, "warmup_epochs": 1, "frozen_epochs": 0}) == "1+30 epochs"
    assert epochs_label({"epochs": 20, "warmup_epochs": 0, "frozen_epochs": 2}) == "20 epochs (2 frozen)"


def test_seeds_of_one_configuration_share_a_row_with_mean_and_sd():
    runs = [run("car", r1=0.5), run("car", r1=0.6, seed=1), run("car", r1=0.7, seed=2, digest="2222cccc")]
    lines = [[c.strip() for c in line.split("|")[1:-1]] for line in recall_table("car", runs, PUBLISHED).splitlines()
             if "ResNet18" in line]
    by_n = {cells[6]: cells for cells in lines}
    assert set(by_n) == {"1", "2"}
    assert by_n["2"][7] == "55.0 ± 7.1"  # mean of 50 and 60, sample sd 7.07
    assert by_n["2"][8] == "60.0 ± 0.0" and by_n["2"][5].endswith("seeds 0, 1, run 0000aaaa")
    assert by_n["1"][7] == "70.0" and by_n["1"][5].endswith("seed 2, run 2222cccc")


def test_provenance_table_names_device_software_and_time():
    from dmlbench.reporting.tables import provenance_table

    record = run("car")
    record["provenance"] = {"device": "cuda", "device_name": "NVIDIA H200", "device_count": 2, "cpu_threads": 16,
                            "torch": "2.11.0", "cuda": "12.8", "cudnn": 91000, "git_commit": "abcdef123456+dirty",
                            "precision": "bf16", "deterministic": True, "train_seconds": 4230.0}
    row = [c.strip() for c in provenance_table([record, run("cub")]).splitlines()[2].split("|")[1:-1]]
    assert row[1:] == ["NVIDIA H200", "2", "2.11.0", "12.8 / 91000", "abcdef12+dirty", "—", "—", "bf16", "yes",
                       "70.5 min", f"† {NO_IDENTITY}"]  # no code digest, no params recorded
    older = [c.strip() for c in provenance_table([run("cub")]).splitlines()[2].split("|")[1:-1]]
    assert older[1:-1] == ["—"] * 10 and older[-1] == f"† {NO_PROVENANCE}; {NO_IDENTITY}"


def with_intervals(record, dense=None, binary=None):
    """``record`` with the intervals evaluate writes beside its metrics ([low, high] fractions)."""
    bounds = {"recall@1": [0.451, 0.55], "recall@2": [0.5, 0.7], "map@r": [0.2, 0.3049], **(dense or {})}
    if binary is not None:
        bounds["binary"] = binary
    record["intervals"] = {"level": 0.95, "resamples": 1000, "seed": 0, "unit": "class", "method": "percentile",
                           "classes": 16, "metrics": bounds}
    return record


def cells_of(table: str) -> list[list[str]]:
    return [[c.strip() for c in line.split("|")[1:-1]] for line in table.splitlines()[2:] if "ResNet18" in line]


def test_a_single_run_shows_its_interval_for_recall_at_1_and_map_at_r():
    [cells] = cells_of(recall_table("car", [with_intervals(run("car", r1=0.5))], PUBLISHED))
    # R@1 0.5 in [0.451, 0.55] -> 50.0 [45.1, 55.0]; MAP@R 0.25 in [0.2, 0.3049] -> 25.0 [20.0, 30.5] (30.49 rounds
    # to 30.5); R@2 has an interval in the file but its column shows the value alone, as do R@4, R@8, R-Prec.
    assert cells[6:] == ["1", "50.0 [45.1, 55.0]", "60.0", "70.0", "80.0", "25.0 [20.0, 30.5]", "30.0", "0000aaaa†"]
    block = render_tables([with_intervals(run("car"))], [], PUBLISHED)
    assert "carry [low, high], their 95 % bootstrap interval over the test classes" in block


def test_runs_without_intervals_render_as_before_and_seeds_keep_mean_and_sd():
    [old] = cells_of(recall_table("car", [run("car", r1=0.5)], PUBLISHED))  # a metrics file from before intervals
    assert old[7] == "50.0" and old[11] == "25.0"
    assert "bootstrap interval" not in render_tables([run("car")], [], PUBLISHED)
    seeds = [with_intervals(run("car", r1=0.5)), with_intervals(run("car", r1=0.6, seed=1))]
    [row] = cells_of(recall_table("car", seeds, PUBLISHED))
    assert row[6:8] == ["2", "55.0 ± 7.1"] and row[11] == "25.0 ± 0.0"  # no interval across seeds: their spread


def test_binary_rows_show_the_binary_intervals():
    record = with_intervals(run("car", r1=0.5), binary={"recall@1": [0.3, 0.45], "map@r": [0.1, 0.15]})
    record["metrics"]["binary"] = {"recall@1": 0.375, "recall@2": 0.5, "recall@4": 0.625, "recall@8": 0.75,
                                   "map@r": 0.125, "r_precision": 0.25}
    dense, binary = cells_of(recall_table("car", [record], PUBLISHED))
    assert (dense[4], dense[7]) == ("dense", "50.0 [45.1, 55.0]")
    assert (binary[4], binary[7], binary[11]) == ("binary", "37.5 [30.0, 45.0]", "12.5 [10.0, 15.0]")


@pytest.mark.parametrize("bad", [[0.6, 0.4], [0.4], "0.4-0.6", [0.4, 1.5], [None, 0.5], [True, 1]])
def test_a_malformed_interval_stops_the_tables_with_one_line(bad):
    record = with_intervals(run("car"), dense={"recall@1": bad})
    with pytest.raises(DmlbenchError, match=r"^the metrics file of run cgd-SG-resnet18-car-uncropped-demo-0-0000aaaa "
                                            r"holds intervals\.metrics\.recall@1 = .*, not \[low, high\] fractions "
                                            r"with low <= high: delete it, or rerun dvc repro evaluate for that run$"):
        recall_table("car", [record], PUBLISHED)
    record["intervals"]["metrics"] = [0.1, 0.2]  # not an object at all
    with pytest.raises(DmlbenchError, match=r"holds intervals\.metrics = \[0\.1, 0\.2\], not an object: delete it"):
        recall_table("car", [record], PUBLISHED)
