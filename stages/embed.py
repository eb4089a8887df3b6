"""Stage embed: trained model + evaluation manifests -> embeddings/embeddings.pt (L2-normalised)."""

from pathlib import Path

from dmlbench import atomic, stage
from dmlbench.config import section
from dmlbench.retrieval.embedding import embed_prepared
from dmlbench.sections import EmbedConfig, TrainConfig, run_stamp
from dmlbench.training.model_file import load_model
from dmlbench.training.distributed import SINGLE, device_for

MODEL = Path("models/model.pt")
OUT = Path("embeddings/embeddings.pt")


def main(params: dict) -> None:
    exp = stage.experiment(params)
    method, cfg = stage.method_config(params, exp)
    ecfg = section(params, "embed", EmbedConfig)
    device = device_for(SINGLE, section(params, "train", TrainConfig).device)
    model = load_model(MODEL, exp, method, cfg)
    splits = embed_prepared(model, stage.prepared_dir(exp), method.test_transform(cfg),
                            ecfg.batch_size, ecfg.workers, device, precision=ecfg.precision,
                            channels_last=ecfg.channels_last)
    atomic.save_torch(OUT, {"run": run_stamp(exp, cfg), "splits": splits})
    shapes = ", ".join(f"{name} {tuple(s['embeddings'].shape)}" for name, s in splits.items())
    print(f"embed: {shapes} -> {OUT}")


if __name__ == "__main__":
    stage.run(main)
