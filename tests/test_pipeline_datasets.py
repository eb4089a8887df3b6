"""End to end on each real dataset's layout: `dvc exp run -S dataset=...` on tiny fakes in a repo copy."""

import json
import sys
from pathlib import Path

import pytest
import yaml

from pipeline_repo import commit, copy_repo, sh, tiny_params

sys.path.insert(0, str(Path(__file__).parent / "data"))
from fake_datasets import write_fake_cars, write_fake_folder, write_fake_inshop  # noqa: E402

SMALL_KS = "evaluate.recall_ks=[1,2,4]"  # the fakes have fewer gallery images than SOP's / In-shop's K lists
# dataset -> (overrides, expected queries, expected gallery size, K list, stages). SOP shares CARS's test-split
# layout end to end (its reader is tested against a fixture in tests/data/test_real_readers.py); the In-shop
# query/gallery layout and a folder of your own are the other two paths through the pipeline. After evaluate, CARS
# and a folder have the synthetic demo's layout (one test split), whose pictures, complexity and tables stages
# every demo run exercises: they run up to evaluate (check, prepare, train, embed, evaluate; 3 fewer stage
# processes of ~4 s each); In-shop runs the whole pipeline.
CASES = {
    "car": (["crop=cropped"], 12, 11, [1, 2, 4, 8], ["evaluate"]),
    "isc": (["crop=uncropped", SMALL_KS], 6, 6, [1, 2, 4], []),
    "folder": (["crop=uncropped", "evaluate.recall_ks=null"], 12, 11, [1, 2, 4, 8], ["evaluate"]),
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = copy_repo(tmp_path_factory.mktemp("repo"))
    raw = tmp_path_factory.mktemp("raw")
    write_fake_cars(raw / "car", num_classes=4, per_class=6)
    write_fake_inshop(raw / "isc", train_ids=3, test_ids=3, per_id=4)
    write_fake_folder(raw / "folder", per_class=6)
    params = tiny_params()
    params["cgd"]["epochs"] = 1
    params["data"]["root"] = str(raw)  # absolute: the fakes live outside the repository
    params["prepare"]["check_counts"] = False
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    commit(root, "tiny params")
    return root


@pytest.mark.slow
@pytest.mark.parametrize("dataset", list(CASES))
def test_exp_run_on_each_dataset(repo, dataset):
    overrides, queries, gallery, ks, stages = CASES[dataset]
    args = [a for o in [f"dataset={dataset}", *overrides] for a in ("-S", o)]
    sh(repo, sys.executable, "-m", "dvc", "exp", "run", *args, *stages)
    crop = "cropped" if "crop=cropped" in overrides else "uncropped"
    (path,) = (repo / "metrics/runs").glob(f"cgd-SG-resnet18-{dataset}-{crop}-demo-s0-*.json")
    record = json.loads(path.read_text())
    assert record["run"]["dataset"] == dataset and record["run"]["crop"] == crop
    assert (record["queries"], record["gallery"]) == (queries, gallery)
    assert record["recall_ks"] == {"ks": ks, "source": "dataset" if dataset in ("car", "folder") else "params"}
    metrics = record["metrics"]
    assert set(metrics) == {*(f"recall@{k}" for k in ks), "map@r", "r_precision"}
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    prepared = repo / f"data/prepared/{dataset}-{crop}"
    # The fake folder holds notes.txt files, which prepare lists (it ignores them) in skipped.csv.
    expected = {"isc": ["gallery.csv", "query.csv", "train.csv"],
                "folder": ["skipped.csv", "test.csv", "train.csv"]}.get(dataset, ["test.csv", "train.csv"])
    assert sorted(p.name for p in prepared.glob("*.csv")) == expected
