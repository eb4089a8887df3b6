"""A run's name comes from validated, resolved values and the prepared data: a default written out or left out
names the same run, ``auto`` names what runs (a GPU's bf16 never takes a CPU's fp32 name), and other data (more
synthetic classes, a changed image) gets another name."""

import dataclasses
import hashlib
import json

import pytest
import torch
from PIL import Image
from committed import committed_params

from dmlbench.data.manifest import read_manifest
from dmlbench.data.prepare import DATA_DIGEST
from dmlbench.data.synthetic import write_synthetic
from dmlbench.methods import METHODS
from dmlbench.params.load import build
from dmlbench.params.sections import PrepareConfig, SECTIONS
from dmlbench.pipeline import run_name
from dmlbench.pipeline.experiment import load_experiment
from dmlbench.pipeline.prepare import prepare_folder


@pytest.fixture
def prepared(tmp_path):
    """A folder holding only a data digest: the name reads nothing else of it."""
    (tmp_path / DATA_DIGEST).write_text(json.dumps({"sha256": "ab" * 32, "images": 1}))
    return tmp_path


def name(params: dict, folder) -> str:
    return run_name.run_of(load_experiment(params), folder).name


def defaulted_keys() -> list[tuple[str, str, object]]:
    """(section, key, default) of every field with a default, in the stage sections and every method's section."""
    classes = {**SECTIONS, **{m: method.config_cls for m, method in METHODS.items()}}
    return [(section, f.name, f.default) for section, cls in sorted(classes.items()) for f in dataclasses.fields(cls)
            if f.default is not dataclasses.MISSING]


@pytest.mark.parametrize("section, key, default", defaulted_keys(), ids=lambda v: str(v))
def test_a_default_written_out_or_left_out_names_the_same_run(section, key, default, prepared):
    params = committed_params()
    if section in METHODS:
        params["method"] = section  # the section of the method that runs is the one in the name
    written = {**params, section: {**params[section], key: default}}
    left_out = {**params, section: {k: v for k, v in params[section].items() if k != key}}
    assert name(written, prepared) == name(left_out, prepared)


@pytest.mark.parametrize("key, resolved", [("precision", "fp32"), ("device", "cpu")])
def test_auto_names_what_runs_on_a_cpu(key, resolved, prepared):
    params = committed_params()
    auto = {**params, "train": {**params["train"], key: "auto"}}
    explicit = {**params, "train": {**params["train"], key: resolved}}
    assert name(auto, prepared) == name(explicit, prepared)


def test_a_gpu_run_never_takes_a_cpu_runs_name(prepared, monkeypatch):
    params = committed_params()
    cpu = name(params, prepared)
    # As on a GPU with native bf16: auto resolves to cuda and bf16 (nothing runs on it here).
    monkeypatch.setattr(run_name, "device_for", lambda where, device: torch.device("cuda"))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    gpu = name(params, prepared)
    explicit = name({**params, "train": {**params["train"], "device": "cuda", "precision": "bf16"}}, prepared)
    assert gpu != cpu and gpu == explicit
    fp32_gpu = name({**params, "train": {**params["train"], "precision": "fp32"}}, prepared)
    assert fp32_gpu not in (cpu, gpu)  # fp32 on a GPU: the device is part of the name, not only the precision


def test_val_fraction_enters_the_name_only_when_best_val_holds_classes_out(prepared):
    params = committed_params()
    other = {**params, "train": {**params["train"], "val_fraction": 0.3}}
    assert name(params, prepared) == name(other, prepared)  # select: last trains on every class either way
    best_val = {**params, "train": {**params["train"], "select": "best_val"}}
    assert name(best_val, prepared) != name({**other, "train": {**other["train"], "select": "best_val"}}, prepared)


def prepare_synthetic(root, num_classes: int | None):
    """Synthesize ``num_classes`` x 2 images (None: keep the raw folder there) and prepare them."""
    if num_classes is not None:
        write_synthetic(root / "raw", num_classes, 2, 32, 0)
    cfg = build(PrepareConfig, {"max_side": 32, "workers": 0}, "prepare")
    prepare_folder("synthetic", "uncropped", root / "raw", root / "prepared", cfg)
    return root / "prepared"


def test_other_synthetic_classes_are_another_run(tmp_path):
    params = committed_params()
    assert name(params, prepare_synthetic(tmp_path / "ten", 10)) != name(params, prepare_synthetic(tmp_path / "64", 64))


def test_a_changed_image_is_another_run(tmp_path):
    params = committed_params()
    before = name(params, prepare_synthetic(tmp_path, 10))
    path = next((tmp_path / "raw" / "images").rglob("*.jpg"))
    with Image.open(path) as image:
        changed = image.convert("RGB")
    changed.paste((255, 0, 0), (0, 0, 16, 16))  # a red corner: other pixels, the same file name
    changed.save(path, format="JPEG")
    after = name(params, prepare_synthetic(tmp_path, None))
    assert before != after


def test_the_digest_is_that_of_the_manifests_and_the_written_bytes(tmp_path):
    """Hashed as prepare writes each image, it equals the hash of what lies on disk, read back."""
    prepared = prepare_synthetic(tmp_path, 4)
    digest = hashlib.sha256()
    for split in ("test", "train"):
        manifest = prepared / f"{split}.csv"
        images = "".join(hashlib.sha256((prepared / path).read_bytes()).hexdigest()
                         for path, _ in read_manifest(manifest))
        digest.update(f"{split}\n".encode() + manifest.read_bytes() + images.encode())
    recorded = json.loads((prepared / DATA_DIGEST).read_text())
    assert recorded == {"sha256": digest.hexdigest(), "images": 8}  # 4 classes x 2 images


def test_the_selection_metric_enters_the_name_only_when_an_epoch_is_selected(prepared):
    params = committed_params()
    recall = {**params, "train": {**params["train"], "select_metric": "recall@1"}}
    assert name(params, prepared) == name(recall, prepared)  # select: last: the metric picks nothing
    for select in ("best_val", "best_test"):
        by_map = {**params, "train": {**params["train"], "select": select}}
        by_recall = {**recall, "train": {**recall["train"], "select": select}}
        assert name(by_map, prepared) != name(by_recall, prepared)
