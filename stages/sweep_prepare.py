"""Sweep stage prepare: the sweep's own synthetic dataset (sweeps/params.yaml base.synthetic) -> sweeps/prepared/."""

from dmlbench.data.synthetic import write_synthetic
from dmlbench.params.load import build
from dmlbench.params.sections import PrepareConfig, SyntheticConfig
from dmlbench.pipeline import stage
from dmlbench.pipeline.prepare import prepare_folder
from dmlbench.sweep import SWEEP_PREPARED, SWEEP_RAW, read_sweep


def main() -> None:
    base = read_sweep()["base"]
    synthetic = build(SyntheticConfig, base["synthetic"], "base.synthetic")
    write_synthetic(SWEEP_RAW, synthetic.num_classes, synthetic.images_per_class, synthetic.image_size,
                    synthetic.seed)
    summary = prepare_folder("synthetic", base["crop"], SWEEP_RAW, SWEEP_PREPARED,
                             build(PrepareConfig, base["prepare"], "base.prepare"))
    print(f"sweep prepare: {SWEEP_RAW} -> {SWEEP_PREPARED}: {summary}")


if __name__ == "__main__":
    stage.run(main)
