"""A tiny run in a workspace folder, as train (0 epochs) and embed leave it, without DVC: for the query and
export tests."""

import shutil
from pathlib import Path

import torch

from dmlbench import atomic
from dmlbench.data.image_dataset import class_list
from dmlbench.data.manifest import read_manifest
from dmlbench.identity import Experiment, make_run, prepared_dir
from dmlbench.methods import get_method
from dmlbench.methods.cgd import CGDConfig
from dmlbench.models.backbones import backbone_entry
from dmlbench.retrieval.embedding import embed_prepared
from dmlbench.training.model_file import save_model

EXP = Experiment("cgd", "resnet18", "synthetic", "uncropped", 0)
CFG = CGDConfig(gd_config="SG", feature_dim=32, smoothing=0.1, temperature=0.5, margin=0.1, freeze_bn=False,
                classes_per_batch=2, images_per_class=2, lr=1e-3, epochs=0, lr_milestones=(0.6, 0.8),
                lr_gamma=0.1, train_resize=36, train_crop=32, test_resize=32)
RUN = make_run(EXP, "SG", CFG, {})
FACTS = {"precision": "fp32", "pretrained": False, "epochs": 0, "warmup_epochs": 0, "frozen_epochs": 0}


def make_workspace(prepared: Path, root: Path) -> Path:
    """root/ holding the prepared images, models/<run>/model.pt (untrained, seeded) and its embeddings."""
    target = root / prepared_dir(EXP.dataset, EXP.crop)
    shutil.copytree(prepared, target)
    method = get_method("cgd")
    torch.manual_seed(0)
    model = method.build_model(CFG, EXP.backbone, 3, False, EXP.seed).eval()
    classes = class_list(read_manifest(target / "train.csv"))
    save_model(root / RUN.paths.model, RUN, CFG, classes, FACTS, model)
    transform = method.test_transform(CFG, backbone_entry(EXP.backbone).normalization)
    splits = embed_prepared(model, target, transform, 8, 0, torch.device("cpu"))
    atomic.save_torch(root / RUN.paths.embeddings, {"run": RUN.record(), "training": FACTS,
                                                    "embedding": {"precision": "fp32"}, "splits": splits})
    return root
