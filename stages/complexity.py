"""Stage complexity: params and MACs (thop, seed convention + today's thop) -> metrics/complexity/<method>.json."""

import dataclasses
from pathlib import Path

from dmlbench import atomic, stage
from dmlbench.reporting.complexity import count_flops, count_params
from dmlbench.config import section
from dmlbench.data.image_dataset import class_list
from dmlbench.data.manifest import read_manifest
from dmlbench.data.protocol import train_classes
from dmlbench.sections import ComplexityConfig


def measure(method, cfg, backbone: str, dataset: str, classes: int, image_size: int) -> dict:
    """One cell: the method's full model (classifier included), as the seeds count it."""
    model = method.build_model(cfg, backbone, classes, pretrained=False)
    return {"backbone": backbone, "dataset": dataset, "classes": classes, "params": count_params(model),
            "macs_seed": count_flops(model, image_size, convention="seed"),
            "macs_thop": count_flops(model, image_size, convention="thop")}


def main(params: dict) -> None:
    exp = stage.experiment(params)
    method, cfg = stage.method_config(params, exp)
    ccfg = section(params, "complexity", ComplexityConfig)
    classes = len(class_list(read_manifest(stage.prepared_dir(exp) / "train.csv")))
    current = measure(method, cfg, exp.backbone, exp.dataset, classes, ccfg.image_size)
    grid = [measure(method, cfg, b, d, train_classes(d), ccfg.image_size)
            for b in ccfg.backbones for d in ccfg.datasets]
    out = Path("metrics/complexity") / f"{exp.method}.json"
    atomic.write_json(out, {"method": exp.method, "config": dataclasses.asdict(cfg),
                            "image_size": ccfg.image_size, "current": current, "grid": grid})
    print(f"complexity: {exp.method} {exp.backbone}: {current['params']:,} params, "
          f"{current['macs_seed']:,} MACs (seed convention) -> {out}")


if __name__ == "__main__":
    stage.run(main)
