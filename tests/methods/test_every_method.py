"""The method contract, checked for every method in METHODS (as tests/models/test_backbones.py checks every
backbone): one step lowers the loss on a fixed batch, a resumed run equals an uninterrupted one, the model file
rebuilds the model alone, and `dmlbench export` and `dmlbench query` work on the run.

Each method runs on its params.yaml section shrunk to tiny sizes (SHRINK, for the fields it has): ResNet-18 at
32 px, 2 classes x 2 images, one step per epoch. A new method gets these tests by its line in METHODS."""

import dataclasses
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from dmlbench import atomic
from dmlbench.data.image_dataset import ManifestDataset, class_list
from dmlbench.data.manifest import read_manifest
from dmlbench.identity import Experiment, make_run, prepared_dir
from dmlbench.methods import METHODS
from dmlbench.methods.method import input_normalization, normalization_record
from dmlbench.methods.optimization import only_trainable
from dmlbench.pipeline.experiment import method_config
from dmlbench.retrieval.embedding import embed_prepared
from dmlbench.training.model_file import load_model_alone, save_model

REPO = Path(__file__).resolve().parents[2]
SHRINK = {"feature_dim": 8, "classes_per_batch": 2, "images_per_class": 2, "batch_size": 4, "ensemble_size": 2,
          "meta_classes": 2, "train_resize": 36, "test_resize": 36, "train_crop": 32, "test_crop": 32,
          "image_size": 32, "epochs": 2, "warmup_epochs": 1, "frozen_epochs": 1, "lr_step": 1}
NAMES = sorted(METHODS)


def tiny_config(name: str):
    """The method's params.yaml section (synthetic), its size fields shrunk; validated again by replace()."""
    _, cfg = method_config(yaml.safe_load((REPO / "params.yaml").read_text()), name, "synthetic")
    fields = {f.name for f in dataclasses.fields(cfg)}
    return dataclasses.replace(cfg, **{k: v for k, v in SHRINK.items() if k in fields})


def fixed_batch(method, cfg, prepared: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Two images of each of the first two training classes through the method's training transform (seeded)."""
    rows = read_manifest(prepared / "train.csv")
    classes = class_list(rows)
    picked = [row for c in classes[:2] for row in [r for r in rows if r[1] == c][:2]]
    norm = input_normalization(method, cfg, "resnet18", prepared)
    dataset = ManifestDataset(prepared, picked, method.train_transform(cfg, norm), classes)
    torch.manual_seed(0)
    images, labels = zip(*(dataset[i] for i in range(len(dataset))))
    return torch.stack(images), torch.tensor(labels)


def build(method, cfg, classes: int):
    torch.manual_seed(0)
    model = method.build_model(cfg, "resnet18", classes, False, 0).train()
    return model, method.build_optimizer(cfg, model)


def step(method, cfg, model, optimization, epoch: int, images, labels) -> float:
    """One training step of ``epoch`` as the loop takes it: its optimizer, only its trainable parameters."""
    optimizer = optimization.optimizer_for(epoch)
    optimizer.zero_grad(set_to_none=True)
    with only_trainable(model, optimization.trainable_for(epoch)):
        loss = method.loss(cfg, model(images), labels)["loss"]
        loss.backward()
    optimizer.step()
    return loss.item()


@pytest.mark.parametrize("name", NAMES)
def test_one_step_lowers_the_loss_on_a_fixed_batch(name, prepared):
    method, cfg = METHODS[name], tiny_config(name)
    images, labels = fixed_batch(method, cfg, prepared)
    model, optimization = build(method, cfg, 3)
    before = step(method, cfg, model, optimization, 0, images, labels)
    with torch.no_grad():
        after = method.loss(cfg, model(images), labels)["loss"].item()
    assert after < before, f"{name}: loss {before} -> {after} after one step"


@pytest.mark.parametrize("name", NAMES)
def test_resumed_from_its_state_equals_an_uninterrupted_run(name, prepared):
    """Two epochs of one step (across a warm-up or frozen phase where the method has one), straight, and
    interrupted after the first: the saved model and optimisation state restore everything that matters."""
    method, cfg = METHODS[name], tiny_config(name)
    images, labels = fixed_batch(method, cfg, prepared)
    straight, optimization = build(method, cfg, 3)
    for epoch in range(2):
        step(method, cfg, straight, optimization, epoch, images, labels)
        optimization.end_epoch(epoch, 0.5)  # a constant selection score: a plateau schedule reads one

    first, optimization = build(method, cfg, 3)
    step(method, cfg, first, optimization, 0, images, labels)
    optimization.end_epoch(0, 0.5)
    saved = {"model": first.state_dict(), "optimization": optimization.state_dict()}
    resumed, optimization = build(method, cfg, 3)
    resumed.load_state_dict(saved["model"])
    optimization.load_state_dict(saved["optimization"])
    step(method, cfg, resumed, optimization, 1, images, labels)
    # The same operations on the same machine in the same order: equal to the bit.
    assert all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()))

    labels_list = [label for _, label in read_manifest(prepared / "train.csv")]
    samplers = [method.batch_sampler(cfg, labels_list, 0) for _ in range(2)]
    for sampler in samplers:
        sampler.set_epoch(1)
    assert list(samplers[0]) == list(samplers[1])  # a resumed epoch draws the batches the straight one drew


def workspace(name: str, prepared: Path, root: Path) -> tuple[str, Path]:
    """root/ with the prepared images, a model file of the untrained tiny model and its embeddings (as train and
    embed leave them); returns the run's name and a test image."""
    method, cfg = METHODS[name], tiny_config(name)
    exp = Experiment(name, "resnet18", "synthetic", "uncropped", 0)
    run = make_run(exp, method.describe(cfg), cfg, {})
    target = root / prepared_dir(exp.dataset, exp.crop)
    shutil.copytree(prepared, target)
    classes = class_list(read_manifest(target / "train.csv"))
    model, _ = build(method, cfg, len(classes))
    model.eval()
    norm = input_normalization(method, cfg, "resnet18", target)
    facts = {"precision": "fp32", "pretrained": False, "epochs": 0, "warmup_epochs": 0, "frozen_epochs": 0,
             "normalization": normalization_record(norm)}
    save_model(root / run.paths.model, run, cfg, classes, facts, model)
    splits = embed_prepared(model, target, method.test_transform(cfg, norm), 8, 0, torch.device("cpu"))
    atomic.save_torch(root / run.paths.embeddings, {"run": run.record(), "training": facts,
                                                    "embedding": {"precision": "fp32"}, "splits": splits})
    return run.name, target / splits["test"]["paths"][0]


@pytest.mark.parametrize("name", NAMES)
def test_the_model_file_rebuilds_the_model_alone(name, prepared, tmp_path):
    run, image = workspace(name, prepared, tmp_path)
    rebuilt, saved = load_model_alone(tmp_path / "models" / run / "model.pt")
    method, cfg = METHODS[name], tiny_config(name)
    original, _ = build(method, cfg, len(saved["classes"]))
    assert saved["run"]["name"] == run
    assert all(torch.equal(a, b) for a, b in zip(original.state_dict().values(), rebuilt.state_dict().values()))
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # the same weights through the same code: the same embeddings, to the bit
        assert torch.equal(original.eval()(images)[0], rebuilt.eval()(images)[0])


@pytest.mark.parametrize("name", NAMES)
def test_export_and_query_work(name, prepared, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from dmlbench.cli import main

    run, image = workspace(name, prepared, tmp_path)
    assert main(["export", "--run", run, "--root", str(tmp_path)]) == 0, capsys.readouterr().err
    assert (tmp_path / "exports" / run / "model.onnx").is_file()
    printed = {}
    for flag in ([], ["--onnx"]):
        assert main(["query", str(image), "--run", run, "--k", "3", "--root", str(tmp_path), "--out",
                     str(tmp_path / "q.png"), *flag]) == 0, capsys.readouterr().err
        printed[bool(flag)] = [line.split() for line in capsys.readouterr().out.splitlines()
                               if line.strip()[:1].isdigit()]
        assert len(printed[bool(flag)]) == 3 and (tmp_path / "q.png").is_file()
    # The untrained tiny models put images close together, so near ties may order differently; the similarities
    # at each rank agree within float32 rounding of two runtimes' kernels (the export's own check: cosine 0.9999).
    similarities = {onnx: [float(row[3]) for row in rows] for onnx, rows in printed.items()}
    assert similarities[True] == pytest.approx(similarities[False], abs=2e-4)


def test_the_default_sampler_reads_the_section_and_names_what_is_missing():
    from dataclasses import make_dataclass

    from dmlbench.data.sampler import PxKSampler, ShuffledBatchSampler
    from dmlbench.errors import DmlbenchError
    from dmlbench.methods.defaults import batch_sampler

    labels = [0, 0, 1, 1, 2, 2]
    pxk = batch_sampler(make_dataclass("P", [("classes_per_batch", int), ("images_per_class", int)])(2, 2), labels, 0)
    assert isinstance(pxk, PxKSampler) and (pxk.p, pxk.k, len(pxk)) == (2, 2, 1)  # 6 images // 4 per batch
    shuffled = batch_sampler(make_dataclass("S", [("batch_size", int)])(3), labels, 0)
    assert isinstance(shuffled, ShuffledBatchSampler) and len(shuffled) == 2
    with pytest.raises(DmlbenchError, match="N has neither classes_per_batch and images_per_class nor batch_size"):
        batch_sampler(make_dataclass("N", [("lr", float)])(0.1), labels, 0)
