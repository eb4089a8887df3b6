import dataclasses

import pytest
import torch

from dmlbench.errors import DmlbenchError
from dmlbench.retrieval.evaluation import evaluate_splits, load_embeddings
from dmlbench import atomic
from dmlbench.identity import Experiment, make_run
from dmlbench.methods import get_method
from dmlbench.methods.cgd import CGDConfig
from dmlbench.training.model_file import load_model, load_model_alone, save_model

EXP = Experiment("cgd", "resnet18", "synthetic", "uncropped", 0)
CFG = CGDConfig(gd_config="SG", feature_dim=64, smoothing=0.1, temperature=0.5, margin=0.1, freeze_bn=True,
                classes_per_batch=2, images_per_class=2, lr=1e-3, epochs=1, lr_milestones=(0.6, 0.8),
                lr_gamma=0.1, train_resize=36, train_crop=32, test_resize=32)


RUN = make_run(EXP, "SG", CFG, {})
FACTS = {"precision": "fp32", "pretrained": False, "epochs": 1, "warmup_epochs": 0, "frozen_epochs": 0}


def test_model_round_trip_gives_identical_outputs(tmp_path):
    method = get_method("cgd")
    torch.manual_seed(0)
    model = method.build_model(CFG, "resnet18", 5, False, 0).eval()
    save_model(tmp_path / "model.pt", RUN, CFG, [3, 4, 7, 8, 9], FACTS, model)
    loaded, saved = load_model(tmp_path / "model.pt", RUN, method, CFG)
    alone, _ = load_model_alone(tmp_path / "model.pt")  # no params needed: the file says how to build it
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(model(x)[0], loaded.eval()(x)[0]) and torch.equal(model(x)[0], alone.eval()(x)[0])
    assert saved["training"] == FACTS and saved["run"]["name"] == RUN.name


def test_model_from_other_params_is_refused(tmp_path):
    method = get_method("cgd")
    model = method.build_model(CFG, "resnet18", 3, False, 0)
    save_model(tmp_path / "model.pt", RUN, CFG, [0, 1, 2], FACTS, model)
    other = dataclasses.replace(CFG, gd_config="MG")
    with pytest.raises(DmlbenchError, match=r"trained with other params than params.yaml describes"):
        load_model(tmp_path / "model.pt", make_run(EXP, "MG", other, {}), method, other)
    with pytest.raises(DmlbenchError, match="not found: run the train stage"):
        load_model(tmp_path / "missing.pt", RUN, method, CFG)
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(DmlbenchError, match="cannot read model file"):
        load_model(tmp_path / "junk.pt", RUN, method, CFG)
    atomic.save_torch(tmp_path / "old.pt", {"method": "cgd", "state_dict": {}})  # the format before run names
    with pytest.raises(DmlbenchError, match="not a dmlbench model of format 2"):
        load_model(tmp_path / "old.pt", RUN, method, CFG)


def test_embeddings_from_another_run_are_refused(tmp_path):
    saved = {"run": RUN.record(), "training": FACTS, "embedding": {"precision": "fp32"}, "splits": {}}
    atomic.save_torch(tmp_path / "e.pt", saved)
    assert load_embeddings(tmp_path / "e.pt", RUN.record()) == saved
    cropped = make_run(dataclasses.replace(EXP, crop="cropped"), "SG", CFG, {})
    with pytest.raises(DmlbenchError, match="comes from another run"):
        load_embeddings(tmp_path / "e.pt", cropped.record())


def test_evaluate_splits_picks_self_or_query_gallery_mode():
    emb = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]]), dim=1)
    labels = torch.tensor([0, 0, 1, 1])
    self_mode = evaluate_splits({"test": {"embeddings": emb, "labels": labels}}, (1, 2), 2)
    assert self_mode["metrics"]["recall@1"] == 1.0 and self_mode["queries"] == 4 and self_mode["gallery"] == 3
    qg = evaluate_splits({"query": {"embeddings": emb[:2], "labels": torch.tensor([0, 1])},
                          "gallery": {"embeddings": emb, "labels": labels}}, (1,), 2)
    # query 0 = [1, 0] finds gallery 0 (label 0): hit; query 1 = [0.9, 0.1] finds gallery 1 (label 0): miss.
    assert qg["metrics"]["recall@1"] == 0.5 and qg["gallery"] == 4
