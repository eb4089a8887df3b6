"""The complexity step: params and MACs of the current model and of the seeds' grid (backbones x datasets)."""

from dmlbench.data.protocol import train_classes
from dmlbench.params.experiment import ExperimentParams
from dmlbench.reporting.complexity import measure


def measure_experiment(xp: ExperimentParams, classes: int) -> tuple[dict, list[dict]]:
    """(the current model with ``classes`` training classes, every cell of complexity.backbones x datasets); each
    cell is built with its own dataset's section (a method's per_dataset overrides) and published class count."""
    exp, ccfg = xp.experiment, xp.complexity
    current = measure(xp.method, xp.config, exp.backbone, exp.dataset, classes, ccfg.image_size, exp.seed)
    grid = [measure(xp.method, xp.configs[d], b, d, train_classes(d), ccfg.image_size, exp.seed)
            for b in ccfg.backbones for d in ccfg.datasets]
    return current, grid
