"""Stage complexity: params and MACs (thop, seed convention + today's thop) -> metrics/complexity/<method>.json."""

import dataclasses

from dmlbench import atomic
from dmlbench.data.image_dataset import class_list
from dmlbench.data.manifest import read_manifest
from dmlbench.data.protocol import train_classes
from dmlbench.identity import COMPLEXITY_DIR, prepared_dir
from dmlbench.pipeline import experiment, stage
from dmlbench.reporting.complexity import measure


def main() -> None:
    xp = experiment.load()
    exp, method, ccfg = xp.experiment, xp.method, xp.complexity
    classes = len(class_list(read_manifest(prepared_dir(exp.dataset, exp.crop) / "train.csv")))
    current = measure(method, xp.config, exp.backbone, exp.dataset, classes, ccfg.image_size, exp.seed)
    # Each cell is built with its own dataset's params (a method's per_dataset overrides).
    grid = [measure(method, xp.configs[d], b, d, train_classes(d), ccfg.image_size, exp.seed)
            for b in ccfg.backbones for d in ccfg.datasets]
    out = COMPLEXITY_DIR / f"{exp.method}.json"
    atomic.write_json(out, {"method": exp.method, "variant": xp.variant, "config": dataclasses.asdict(xp.config),
                            "image_size": ccfg.image_size, "current": current, "grid": grid})
    print(f"complexity: {exp.method} {exp.backbone}: {current['params']:,} params, "
          f"{current['macs_seed']:,} MACs (seed convention) -> {out}")


if __name__ == "__main__":
    stage.run(main)
