"""Stage complexity: params and MACs (thop, seed convention + today's thop) -> metrics/complexity/<method>.json."""

import dataclasses

from dmlbench import atomic
from dmlbench.data.image_dataset import class_list
from dmlbench.data.manifest import read_manifest
from dmlbench.identity import COMPLEXITY_DIR, prepared_dir
from dmlbench.pipeline import experiment, stage
from dmlbench.pipeline.complexity import measure_experiment


def main() -> None:
    xp = experiment.load()
    exp = xp.experiment
    classes = len(class_list(read_manifest(prepared_dir(exp.dataset, exp.crop) / "train.csv")))
    current, grid = measure_experiment(xp, classes)
    out = COMPLEXITY_DIR / f"{exp.method}.json"
    atomic.write_json(out, {"method": exp.method, "variant": xp.variant, "config": dataclasses.asdict(xp.config),
                            "image_size": xp.complexity.image_size, "current": current, "grid": grid})
    print(f"complexity: {exp.method} {exp.backbone}: {current['params']:,} params, "
          f"{current['macs_seed']:,} MACs (seed convention) -> {out}")


if __name__ == "__main__":
    stage.run(main)
