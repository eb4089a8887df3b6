"""Training-step throughput (images/s) of each method's seed recipe, three ways in one run:

(a) dmlbench's training step on one batch kept on the device: the compute limit;
(b) dmlbench's step through its real data loader (prepared JPEGs, per-sample seeded augmentation);
(c) a plain fp32 loop written the way the seeds train: contiguous tensors, unpinned loader, blocking copies.

Each method runs the first cell of benchmarks/recipes/<method>.yaml (backbone, crop, batch, `train:` settings:
fp32, deterministic kernels) from random weights: the speed does not depend on them, and a machine without internet
cannot fetch ImageNet's. (a) and (b) take the recipe's `train:` settings unless overridden. device_check.py reuses this.
Usage: python benchmarks/train_speed.py [--method all] [--device auto] [--steps 20] [--warmup-steps 5]
CPU check: --device cpu --backbone resnet18 --image-size 32 --batch-size 4 --learners 4 --steps 2 --workers 0
"""

import argparse
import copy
import dataclasses
import functools
import gc
import itertools
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch.utils.data import DataLoader

from dmlbench.data.image_dataset import ManifestDataset, class_list
from dmlbench.data.manifest import read_manifest
from dmlbench.data.sampler import SeededBatches
from dmlbench.data.synthetic import write_synthetic
from dmlbench.errors import DmlbenchError
from dmlbench.grid import GRID_PARAMS, RECIPES_DIR, cell_params, grid_cells, load_recipes, read_grid
from dmlbench.methods import METHODS
from dmlbench.methods.method import input_normalization
from dmlbench.models.precision import loader_options, resolve_precision, select_kernels
from dmlbench.params.load import section
from dmlbench.params.sections import PRECISIONS, PrepareConfig, TrainConfig
from dmlbench.pipeline.experiment import method_config
from dmlbench.pipeline.prepare import UNCROPPED, prepare_folder
from dmlbench.training.distributed import SINGLE, device_for
from dmlbench.training.seeding import seed_worker
from dmlbench.training.step import TrainStep

ROOT = Path(__file__).resolve().parents[1]
SEED_WORKERS = 8  # assumed: the seeds' DataLoaders use num_workers=8 (not pinned, not persistent)
DATA_CLASSES = 64  # generated classes; the reader trains on the first 32: more than any seed's P or LREC's 12
UNIQUE_PER_CLASS = 8  # distinct JPEGs per class; the manifest repeats them to fill the measured batches
SIZE_FIELDS = ("train_resize", "train_crop", "test_resize", "test_crop", "image_size")  # image sides, any method


class Shape(NamedTuple):
    """Changes to a seed recipe for a smaller run; None keeps the recipe's value."""

    backbone: str | None = None
    image_size: int | None = None  # the training crop; every other side keeps its ratio to it
    batch_size: int | None = None
    learners: int | None = None  # LREC's ensemble size


class Rate(NamedTuple):
    """Images per second of a timed run, and the device's peak allocation during it (CUDA only, else None)."""

    images_per_s: float
    peak_bytes: int | None


@dataclass
class Bench:
    """One method's recipe ready to time: the model each mode copies, the training images, where and how long."""

    method: Any
    cfg: Any
    tcfg: TrainConfig
    backbone: str
    model: torch.nn.Module  # built once on the CPU (LREC's 48 learners take a while); every mode trains a copy
    dataset: ManifestDataset
    device: torch.device
    workers: int
    warmup: int
    steps: int

    @property
    def batch(self) -> int:
        return batch_size(self.cfg)

    @property
    def crop(self) -> int:
        return self.method.image_sizes(self.cfg)["train"]

    def sampler(self):
        return self.method.batch_sampler(self.cfg, self.dataset.labels, 0)


def seed_recipe(name: str) -> tuple[dict, dict]:
    """(full params, cell) of the first cell of benchmarks/recipes/<name>.yaml: the seed's published setting."""
    recipes = load_recipes(ROOT / RECIPES_DIR)
    if name not in recipes:
        raise DmlbenchError(f"no seed recipe for {name!r} in {ROOT / RECIPES_DIR} (there: {', '.join(recipes)})")
    base = read_grid(ROOT / GRID_PARAMS)["base"]
    cell = next(iter(grid_cells({name: recipes[name]}, base["prepare"]).values()))
    return cell_params(base, recipes[name], cell), cell


def batch_size(cfg) -> int:
    """Images per training batch: plain (batch_size) or P x K."""
    return cfg.batch_size if hasattr(cfg, "batch_size") else cfg.classes_per_batch * cfg.images_per_class


def reshaped(method, cfg, shape: Shape):
    """``cfg`` with the shape's crop (the other sides scaled alike), batch size and ensemble size."""
    changes = {}
    if shape.image_size:
        factor = shape.image_size / method.image_sizes(cfg)["train"]
        changes = {f: max(1, round(getattr(cfg, f) * factor)) for f in SIZE_FIELDS if hasattr(cfg, f)}
    if shape.batch_size and hasattr(cfg, "batch_size"):
        changes["batch_size"] = shape.batch_size
    elif shape.batch_size:  # keep K where the batch allows two classes; P fills the rest
        k = max(1, min(cfg.images_per_class, shape.batch_size // 2))
        changes.update(classes_per_batch=shape.batch_size // k, images_per_class=k)
    if shape.learners and hasattr(cfg, "ensemble_size"):
        changes["ensemble_size"] = shape.learners
    return dataclasses.replace(cfg, **changes)


def recipe_config(name: str, shape: Shape) -> tuple[Any, Any, TrainConfig, str]:
    """(method, its reshaped seed-recipe section, the recipe's `train:` settings from random init, backbone)."""
    params, cell = seed_recipe(name)
    method, cfg = method_config(params, name, cell["dataset"])
    tcfg = dataclasses.replace(section(params, "train", TrainConfig), pretrained=False)
    return method, reshaped(method, cfg, shape), tcfg, shape.backbone or cell["backbone"]


def write_dataset(root: Path, source_size: int, workers: int, unique_per_class: int = UNIQUE_PER_CLASS,
                  classes: int = DATA_CLASSES) -> Path:
    """Generated JPEGs in CUB's layout (the first half of the classes for training), prepared as the prepare stage
    does (originals kept, the training images' mean/std measured); the prepared dir."""
    write_synthetic(root / "raw", classes, unique_per_class, source_size, seed=0)
    base = section(read_grid(ROOT / GRID_PARAMS)["base"], "prepare", PrepareConfig)  # the grid's (seeds' quality)
    prepare = dataclasses.replace(base, workers=workers, check_counts=False)
    prepare_folder("synthetic", UNCROPPED, root / "raw", root / "prepared", prepare)
    return root / "prepared"


def make_bench(name: str, shape: Shape, prepared: Path, device: torch.device, workers: int, warmup: int,
               steps: int, **train_changes) -> Bench:
    """The method's recipe (``train_changes``: TrainConfig fields to override) with its model built once."""
    method, cfg, tcfg, backbone = recipe_config(name, shape)
    tcfg = dataclasses.replace(tcfg, **train_changes)
    rows = read_manifest(prepared / "train.csv")  # repeated: one epoch spans the measurement, no restarts
    rows *= math.ceil(batch_size(cfg) * (warmup + steps + 1) / len(rows))
    classes = class_list(rows)
    transform = method.train_transform(cfg, input_normalization(method, cfg, backbone, prepared))
    dataset = ManifestDataset(prepared, rows, transform, classes)
    model = method.build_model(cfg, backbone, len(classes), False, 0)
    return Bench(method, cfg, tcfg, backbone, model, dataset, device, workers, warmup, steps)


def release(device: torch.device) -> None:
    """Free the GPU memory the last mode held (its model, optimizer and batches) before the next one runs."""
    if device.type == "cuda":  # the CPU has no cache to empty, and collecting there costs seconds
        gc.collect()
        torch.cuda.empty_cache()


def timed(step, batches, bench: Bench) -> Rate:
    """Run ``step`` on ``bench.warmup`` then ``bench.steps`` timed batches from the iterator ``batches``."""
    cuda = bench.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(bench.device)
    for images, labels in itertools.islice(batches, bench.warmup):
        step(images, labels)
    if cuda:
        torch.cuda.synchronize(bench.device)
    start = time.perf_counter()
    for images, labels in itertools.islice(batches, bench.steps):
        step(images, labels)
    if cuda:
        torch.cuda.synchronize(bench.device)
    rate = bench.steps * bench.batch / (time.perf_counter() - start)
    return Rate(rate, torch.cuda.max_memory_allocated(bench.device) if cuda else None)


def endless(loader):
    """The loader's batches, epoch after epoch (a short epoch must not end the measurement early)."""
    if len(loader) == 0:
        raise DmlbenchError("the training loader yields no batch: more training images are needed")
    while True:
        yield from loader


def dmlbench_step(bench: Bench, model: torch.nn.Module, tcfg: TrainConfig):
    """One training step as the train stage runs it: TrainStep at the resolved precision, the main optimizer."""
    select_kernels(tcfg.deterministic)
    precision = resolve_precision(tcfg.precision, bench.device, "train.precision")
    method, cfg = bench.method, bench.cfg
    correct = functools.partial(method.correct, cfg) if method.correct else None
    runner = TrainStep(model, functools.partial(method.loss, cfg), bench.device, precision, tcfg.channels_last,
                       tcfg.compile, correct)
    optimizer = method.build_optimizer(cfg, model).optimizer
    model.train()

    def step(images, labels):
        runner.backward(images, labels, optimizer)  # reads the loss terms back, as the NaN guard does
        runner.step(optimizer)
    return step


def seed_step(bench: Bench, model: torch.nn.Module):
    """One step of a plain fp32 loop as the seeds wrote it, logging the running loss and accuracy every step."""
    torch.backends.cudnn.benchmark = False  # torch's default, which the seeds kept
    torch.use_deterministic_algorithms(False)
    method, cfg, device = bench.method, bench.cfg, bench.device
    model = model.to(device)
    optimizer = method.build_optimizer(cfg, model).optimizer
    model.train()
    log = []

    def step(images, labels):
        images, labels = images.to(device), labels.to(device)
        outputs = model(images)
        loss = method.loss(cfg, outputs, labels)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        log.append((loss.item(), method.correct(cfg, outputs, labels).item() if method.correct else None))
    return step


def on_device(bench: Bench, tcfg: TrainConfig | None = None, execution: str | None = None) -> Rate:
    """(a): dmlbench's step, again and again, on one batch of the sampler's labels kept on the device;
    ``tcfg`` overrides the recipe's `train:` settings, ``execution`` forces LREC's form ("fused" or "loop")."""
    indices = next(iter(bench.sampler()))
    labels = torch.tensor([bench.dataset.labels[i] for i in indices], device=bench.device)
    images = torch.randn(len(indices), 3, bench.crop, bench.crop, device=bench.device)
    tcfg = tcfg or bench.tcfg
    if tcfg.channels_last:  # laid out beforehand: (a) measures the step alone
        images = images.contiguous(memory_format=torch.channels_last)
    model = copy.deepcopy(bench.model)
    if execution is not None:
        model.execution = execution
    return timed(dmlbench_step(bench, model, tcfg), itertools.repeat((images, labels)), bench)


def through_loader(bench: Bench) -> Rate:
    """(b): dmlbench's step through the train stage's loader (seeded batches, pinned, persistent workers)."""
    loader = DataLoader(bench.dataset, batch_sampler=SeededBatches(bench.sampler(), 0), worker_init_fn=seed_worker,
                        **loader_options(bench.workers, bench.device))
    return timed(dmlbench_step(bench, copy.deepcopy(bench.model), bench.tcfg), endless(loader), bench)


def seed_loop(bench: Bench) -> Rate:
    """(c): the seeds' fp32 loop through a plain DataLoader over the same images and batches."""
    loader = DataLoader(bench.dataset, batch_sampler=bench.sampler(), num_workers=bench.workers)
    return timed(seed_step(bench, copy.deepcopy(bench.model)), endless(loader), bench)


def measured(mode, bench: Bench) -> float:
    """images/s of ``mode``, then its GPU memory freed for the next."""
    rate = mode(bench).images_per_s
    release(bench.device)
    return rate


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=[*METHODS, "all"], default="all")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--backbone", help="default: the recipe's first cell's (resnet18 for a CPU check)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per mode")
    parser.add_argument("--warmup-steps", type=int, default=5, help="untimed steps first (workers, autotuning)")
    parser.add_argument("--batch-size", type=int, help="default: the recipe's (cgd 32 x 4, normsoftmax 3 x 25, ...)")
    parser.add_argument("--image-size", type=int, help="training crop (default: the recipe's); sides keep ratios")
    parser.add_argument("--learners", type=int, help="LREC's ensemble size (default: the recipe's 48)")
    parser.add_argument("--workers", type=int, default=min(SEED_WORKERS, os.cpu_count() or 1),
                        help="loader processes of (b) and (c) (default: the seeds' 8, at most the CPU count)")
    parser.add_argument("--precision", choices=PRECISIONS, help="override the recipe's train.precision for (a), (b)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, help="override train.channels_last")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, help="override train.compile")
    parser.add_argument("--deterministic", action=argparse.BooleanOptionalAction, help="override train.deterministic")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    device = device_for(SINGLE, args.device)
    shape = Shape(args.backbone, args.image_size, args.batch_size, args.learners)
    changes = {k: v for k, v in {"precision": args.precision, "channels_last": args.channels_last,
                                 "compile": args.compile, "deterministic": args.deterministic}.items() if v is not None}
    names = list(METHODS) if args.method == "all" else [args.method]
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"train speed: {where}, torch {torch.__version__}, {args.warmup_steps} + {args.steps} steps, "
          f"{args.workers} loader workers; (c): fp32, contiguous, unpinned")
    print(f"{'method':<12} {'backbone':<9} {'batch':>5} {'crop':>4} {'precision':>9} {'(a) device':>11} "
          f"{'(b) loader':>11} {'(c) seed':>9} {'(b)/(c)':>8} {'(b)/(a)':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        prepared = write_dataset(Path(tmp), 2 * (args.image_size or 256), args.workers)
        for name in names:
            bench = make_bench(name, shape, prepared, device, args.workers, args.warmup_steps, args.steps, **changes)
            a, b, c = (measured(mode, bench) for mode in (on_device, through_loader, seed_loop))
            precision = resolve_precision(bench.tcfg.precision, device, "train.precision")
            print(f"{name:<12} {bench.backbone:<9} {bench.batch:>5} {bench.crop:>4} {precision:>9} {a:>11.1f} "
                  f"{b:>11.1f} {c:>9.1f} {b / c:>7.2f}x {b / a:>7.0%}", flush=True)
    print("images/s of a full training step (forward, loss, backward, optimizer step)")


if __name__ == "__main__":
    main()
