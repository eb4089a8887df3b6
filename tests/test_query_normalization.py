"""`dmlbench query` on a run whose method picks its own input normalisation (LREC with the dataset's mean/std):
the query rebuilds it from the model file's record, and refuses a file without a valid one."""

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch

from dmlbench import atomic
from dmlbench.cli import main
from dmlbench.data.image_dataset import class_list
from dmlbench.data.manifest import read_manifest
from dmlbench.data.prepare import IMAGE_STATS, image_stats
from dmlbench.identity import Experiment, make_run, prepared_dir
from dmlbench.methods import get_method
from dmlbench.methods.lrec import LRECConfig
from dmlbench.methods.method import input_normalization, normalization_record
from dmlbench.models.backbones import IMAGENET
from dmlbench.retrieval.ranking import top_k
from dmlbench.retrieval.embedding import embed_prepared
from dmlbench.training.model_file import save_model

EXP = Experiment("lrec", "resnet18", "synthetic", "uncropped", 0)
CFG = LRECConfig(ensemble_size=2, meta_classes=2, batch_size=4, lr=1e-3, epochs=0, lr_milestones=(0.5,),
                 lr_gamma=0.1, resize="shorter", train_resize=36, train_crop=32, test_resize=36, test_crop=32,
                 normalization="dataset")
RUN = make_run(EXP, "2x2", CFG, {})
FACTS = {"precision": "fp32", "pretrained": False, "epochs": 0, "warmup_epochs": 0, "frozen_epochs": 0}


@pytest.fixture(scope="module")
def workspace(prepared, tmp_path_factory) -> Path:
    """An untrained LREC run normalised with the prepared images' own mean/std, as train and embed leave it."""
    root = tmp_path_factory.mktemp("lrec-ws")
    target = root / prepared_dir(EXP.dataset, EXP.crop)
    shutil.copytree(prepared, target)
    rows = read_manifest(target / "train.csv")
    atomic.write_json(target / IMAGE_STATS, image_stats([target / path for path, _ in rows]))  # as prepare does
    method = get_method("lrec")
    norm = input_normalization(method, CFG, EXP.backbone, target)  # reads image_stats.json
    assert norm.mean != IMAGENET.mean  # else the test could not tell the two apart
    torch.manual_seed(0)
    model = method.build_model(CFG, EXP.backbone, 3, False, EXP.seed).eval()
    classes = class_list(rows)
    facts = {**FACTS, "normalization": normalization_record(norm)}
    save_model(root / RUN.paths.model, RUN, CFG, classes, facts, model)
    splits = embed_prepared(model, target, method.test_transform(CFG, norm), 8, 0, torch.device("cpu"))
    atomic.save_torch(root / RUN.paths.embeddings, {"run": RUN.record(), "training": facts,
                                                    "embedding": {"precision": "fp32"}, "splits": splits})
    return root


def test_query_embeds_with_the_runs_dataset_normalisation(workspace, capsys):
    test = torch.load(workspace / RUN.paths.embeddings, weights_only=True)["splits"]["test"]
    image = workspace / prepared_dir(EXP.dataset, EXP.crop) / test["paths"][2]
    assert main(["query", str(image), "--run", RUN.name, "--k", "3", "--root", str(workspace), "--out",
                 str(workspace / "q.png")]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip()[:1].isdigit()]
    similarity, expected = top_k(test["embeddings"][2:3], test["embeddings"], 3, torch.tensor([2]))
    # The printed similarities are those of the stored embeddings: the query image went through the same
    # normalisation as the gallery (ImageNet's would move them by far more than this tolerance). 2e-4: the 4 printed
    # decimals (5e-5) plus the query's own float32 forward (a batch of 1, not 8: other kernels, ~1e-6).
    assert [line[1] for line in lines] == [test["paths"][j] for j in expected[0].tolist()]
    assert [float(line[3]) for line in lines] == pytest.approx(similarity[0].tolist(), abs=2e-4)


@pytest.mark.parametrize("record", [None, {"mean": [0.5, 0.5, 0.5], "std": [0.2, float("nan"), 0.2], "scale": 1.0,
                                           "bgr": False}, {"mean": [0.5, 0.5], "std": [0.2, 0.2], "scale": 1.0,
                                                           "bgr": False}, "dataset"])
def test_a_model_file_without_a_valid_normalisation_is_refused_in_one_line(workspace, tmp_path, capsys, record):
    root = Path(shutil.copytree(workspace, tmp_path / "ws"))
    saved = torch.load(root / RUN.paths.model, weights_only=True)
    saved["training"] = {**FACTS, **({} if record is None else {"normalization": record})}
    atomic.save_torch(root / RUN.paths.model, saved)
    image = root / prepared_dir(EXP.dataset, EXP.crop) / read_manifest(
        root / prepared_dir(EXP.dataset, EXP.crop) / "test.csv")[0][0]
    assert main(["query", str(image), "--run", RUN.name, "--root", str(root), "--out", str(tmp_path / "q.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "records no valid input normalisation" in err[0] and "rerun dvc repro train" in err[0]


def test_the_record_is_plain_numbers_a_person_can_read():
    norm = dataclasses.replace(IMAGENET)
    assert json.loads(json.dumps(normalization_record(norm))) == {
        "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "scale": 1.0, "bgr": False}
