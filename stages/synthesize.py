"""Stage synthesize: write the demo dataset in CUB-200-2011's raw layout to data/synthetic."""

from pathlib import Path

from dmlbench import stage
from dmlbench.config import section
from dmlbench.data.synthetic import write_synthetic
from dmlbench.sections import SyntheticConfig

OUT = Path("data/synthetic")


def main(params: dict) -> None:
    cfg = section(params, "synthetic", SyntheticConfig)
    write_synthetic(OUT, cfg.num_classes, cfg.images_per_class, cfg.image_size, cfg.seed)
    print(f"synthesize: {cfg.num_classes} classes x {cfg.images_per_class} images "
          f"({cfg.image_size} px) -> {OUT}")


if __name__ == "__main__":
    stage.run(main)
