"""Stage embed: the run's model + evaluation manifests -> embeddings/<run>/embeddings.pt (L2-normalised)."""

import dataclasses

from dmlbench import atomic, stage
from dmlbench.config import section
from dmlbench.identity import prepared_dir
from dmlbench.models.backbones import backbone_entry
from dmlbench.retrieval.embedding import embed_prepared
from dmlbench.sections import EmbedConfig, TrainConfig
from dmlbench.stage_params import checked_run
from dmlbench.training.distributed import SINGLE, device_for
from dmlbench.training.model_file import load_model
from dmlbench.training.precision import resolve_precision


def main(params: dict) -> None:
    exp, method, cfg, run = checked_run(params)
    ecfg = section(params, "embed", EmbedConfig)
    device = device_for(SINGLE, section(params, "train", TrainConfig).device)
    model, saved = load_model(run.paths.model, run, method, cfg)
    transform = method.test_transform(cfg, backbone_entry(exp.backbone).normalization)
    precision = resolve_precision(ecfg.precision, device, "embed.precision")
    splits = embed_prepared(model, prepared_dir(exp.dataset, exp.crop), transform, ecfg.batch_size, ecfg.workers,
                            device, precision=precision, channels_last=ecfg.channels_last)
    embedding = {**dataclasses.asdict(ecfg), "precision": precision, "device": device.type}
    atomic.save_torch(run.paths.embeddings, {"run": run.record(), "training": saved["training"],
                                             "embedding": embedding, "splits": splits})
    shapes = ", ".join(f"{name} {tuple(s['embeddings'].shape)}" for name, s in splits.items())
    print(f"embed: {run.name}: {shapes} -> {run.paths.embeddings}")


if __name__ == "__main__":
    stage.run(main)
