"""Stage synthesize: write the demo dataset in CUB-200-2011's raw layout to data/synthetic."""

from dmlbench.data.synthetic import write_synthetic
from dmlbench.params.load import load_params, section
from dmlbench.params.sections import SyntheticConfig
from dmlbench.pipeline import stage
from dmlbench.pipeline.prepare import SYNTHETIC_RAW


def main() -> None:
    cfg = section(load_params(), "synthetic", SyntheticConfig)  # its section only: check validated the rest
    write_synthetic(SYNTHETIC_RAW, cfg.num_classes, cfg.images_per_class, cfg.image_size, cfg.seed)
    print(f"synthesize: {cfg.num_classes} classes x {cfg.images_per_class} images "
          f"({cfg.image_size} px) -> {SYNTHETIC_RAW}")


if __name__ == "__main__":
    stage.run(main)
