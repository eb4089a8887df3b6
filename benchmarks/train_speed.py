"""Training-step throughput (images/s) of each method's seed recipe, three ways in one run:

(a) dmlbench's step on synthetic batches already on the device: the compute limit;
(b) dmlbench's step through its real data loader (prepared JPEGs, per-sample seeded augmentation);
(c) a plain fp32 loop written the way the seeds train: contiguous tensors, unpinned loader, blocking copies.

(a) and (b) use the `train:` params (precision, channels_last, compile, deterministic), overridable below.
Usage: python benchmarks/train_speed.py [--method all] [--device auto] [--steps 20] [--warmup-steps 5]
CPU check: --device cpu --backbone resnet18 --image-size 64 --batch-size 16 --steps 5 --warmup-steps 2
"""

import argparse
import dataclasses
import functools
import itertools
import math
import os
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from dmlbench.training.checkpoint import SeededBatches
from dmlbench.config import load_params, section
from dmlbench.data.image_dataset import ManifestDataset, class_list
from dmlbench.data.manifest import read_manifest
from dmlbench.data.prepare import prepare_dataset
from dmlbench.data.readers import read_dataset
from dmlbench.data.synthetic import write_synthetic
from dmlbench.sections import PRECISIONS, TrainConfig
from dmlbench.methods import METHODS, get_method
from dmlbench.training.step import TrainStep
from dmlbench.training.precision import loader_options, resolve_precision, select_kernels
from dmlbench.training.seeding import seed_worker
from dmlbench.training.distributed import SINGLE, device_for

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
# The seeds' recipes where the demo params shrink them: P x K batch, train resize and crop, frozen BatchNorm.
SEED = {"cgd": {"classes_per_batch": 32, "images_per_class": 4, "train_resize": 252, "train_crop": 224,
                "freeze_bn": True},
        "normsoftmax": {"classes_per_batch": 3, "images_per_class": 25, "train_resize": 256, "train_crop": 224}}
SEED_WORKERS = 8  # assumed: the seeds' DataLoaders use num_workers=8 (not pinned, not persistent)
UNIQUE_PER_CLASS = 8  # distinct JPEGs per class; the manifest repeats them to fill the measured epoch


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=[*METHODS, "all"], default="all")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--backbone", default="resnet50", help="the seeds' resnet50; resnet18 for a CPU check")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per mode")
    parser.add_argument("--warmup-steps", type=int, default=5, help="untimed steps first (workers, autotuning)")
    parser.add_argument("--batch-size", type=int, help="default: the seed's P x K (cgd 128, normsoftmax 75)")
    parser.add_argument("--image-size", type=int, default=224, help="training crop; resize keeps the seed's ratio")
    parser.add_argument("--source-size", type=int, help="side of the generated JPEGs (default: 2 x image size)")
    parser.add_argument("--workers", type=int, default=min(SEED_WORKERS, os.cpu_count() or 1),
                        help="loader processes of (b) and (c) (default: the seeds' 8, at most the CPU count)")
    parser.add_argument("--precision", choices=PRECISIONS, help="override train.precision for (a) and (b)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, help="override train.channels_last")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, help="override train.compile")
    return parser.parse_args()


def train_config(args: argparse.Namespace) -> TrainConfig:
    """params.yaml's `train:` section with the command line's overrides, validated as the train stage does."""
    overrides = {"precision": args.precision, "channels_last": args.channels_last, "compile": args.compile}
    return dataclasses.replace(section(load_params(PARAMS), "train", TrainConfig),
                               **{k: v for k, v in overrides.items() if v is not None})


def method_config(name: str, args: argparse.Namespace):
    """The method's params section with the seed's batch and crop, then --batch-size and --image-size."""
    method = get_method(name)
    cfg = dataclasses.replace(section(load_params(PARAMS), name, method.config_cls), **SEED[name])
    ratio = cfg.train_resize / cfg.train_crop
    cfg = dataclasses.replace(cfg, train_crop=args.image_size, train_resize=round(args.image_size * ratio))
    if args.batch_size:  # keep K where the batch allows two classes; P fills the rest
        k = max(1, min(cfg.images_per_class, args.batch_size // 2))
        cfg = dataclasses.replace(cfg, classes_per_batch=args.batch_size // k, images_per_class=k)
    if cfg.classes_per_batch > 32:  # the generated dataset trains on at most 32 classes
        raise SystemExit(f"--batch-size {args.batch_size} needs {cfg.classes_per_batch} classes per batch for "
                         f"{name}; the generated dataset has 32: use at most {32 * cfg.images_per_class}")
    return method, cfg


def write_dataset(root: Path, classes: int, source_size: int, workers: int) -> Path:
    """Generated JPEGs in CUB's layout, prepared as the prepare stage does (originals kept); the prepared dir."""
    num_classes = min(64, max(8, 2 * classes))  # the reader trains on the first half
    write_synthetic(root / "raw", num_classes, UNIQUE_PER_CLASS, source_size, seed=0)
    prepare_dataset(read_dataset("synthetic", root / "raw"), root / "raw", root / "prepared", False, None, workers)
    return root / "prepared"


def train_rows(prepared: Path, images: int) -> list[tuple[str, int]]:
    """The train manifest repeated to ``images`` rows: one epoch spans the whole measurement, no restarts."""
    rows = read_manifest(prepared / "train.csv")
    return rows * math.ceil(images / len(rows))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_per_second(step, batches, args: argparse.Namespace, batch_size: int, device: torch.device) -> float:
    """Run ``step`` on warm-up then timed batches from the iterator ``batches``."""
    for images, labels in itertools.islice(batches, args.warmup_steps):
        step(images, labels)
    sync(device)
    start = time.perf_counter()
    for images, labels in itertools.islice(batches, args.steps):
        step(images, labels)
    sync(device)
    return args.steps * batch_size / (time.perf_counter() - start)


def dmlbench_step(method, cfg, tcfg: TrainConfig, backbone: str, classes: int, device: torch.device):
    """One training step as the train stage runs it: TrainStep at the resolved precision, the main optimizer."""
    select_kernels(tcfg.deterministic)
    model = method.build_model(cfg, backbone, classes, False, 0)
    precision = resolve_precision(tcfg.precision, device, "train.precision")
    runner = TrainStep(model, functools.partial(method.loss, cfg), device, precision, tcfg.channels_last,
                       tcfg.compile)
    optimizer = method.build_optimizer(cfg, model).optimizer
    model.train()

    def step(images, labels):
        runner.backward(images, labels, optimizer)  # reads the loss terms back, as the NaN guard does
        runner.step(optimizer)
    return step


def seed_step(method, cfg, backbone: str, classes: int, device: torch.device):
    """One step of a plain fp32 loop as the seeds wrote it, logging the running loss and accuracy per step."""
    torch.backends.cudnn.benchmark = False  # torch's default, which the seeds kept
    torch.use_deterministic_algorithms(False)
    model = method.build_model(cfg, backbone, classes, False, 0).to(device)
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
        log.append((loss.item(), (outputs[1].argmax(dim=1) == labels).sum().item()))
    return step


def measure(name: str, args: argparse.Namespace, tcfg: TrainConfig, device: torch.device, root: Path) -> dict:
    """images/s of (a), (b) and (c) for one method."""
    method, cfg = method_config(name, args)
    batch = cfg.classes_per_batch * cfg.images_per_class
    prepared = write_dataset(root / name, cfg.classes_per_batch, args.source_size or 2 * args.image_size,
                             args.workers)
    rows = train_rows(prepared, batch * (args.warmup_steps + args.steps + 1))
    classes = class_list(rows)
    dataset = ManifestDataset(prepared, rows, method.train_transform(cfg), classes)
    sampler = method.batch_sampler(cfg, dataset.labels, 0)
    rates = {}

    images = torch.randn(batch, 3, args.image_size, args.image_size, device=device)
    labels = torch.arange(cfg.classes_per_batch, device=device).repeat_interleave(cfg.images_per_class)
    if tcfg.channels_last:  # laid out beforehand: (a) measures the step alone
        images = images.contiguous(memory_format=torch.channels_last)
    step = dmlbench_step(method, cfg, tcfg, args.backbone, len(classes), device)
    rates["a"] = images_per_second(step, itertools.repeat((images, labels)), args, batch, device)

    loader = DataLoader(dataset, batch_sampler=SeededBatches(sampler, 0), worker_init_fn=seed_worker,
                        **loader_options(args.workers, device))
    step = dmlbench_step(method, cfg, tcfg, args.backbone, len(classes), device)
    rates["b"] = images_per_second(step, iter(loader), args, batch, device)

    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=args.workers)
    step = seed_step(method, cfg, args.backbone, len(classes), device)
    rates["c"] = images_per_second(step, iter(loader), args, batch, device)
    return {"method": name, "batch": batch, **rates}


def main() -> None:
    args = parse_args()
    tcfg = train_config(args)
    device = device_for(SINGLE, args.device)
    precision = resolve_precision(tcfg.precision, device, "train.precision")
    names = list(METHODS) if args.method == "all" else [args.method]
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"train speed: {where}, torch {torch.__version__}, {args.backbone}, {args.image_size} px crops, "
          f"{args.warmup_steps} + {args.steps} steps, {args.workers} loader workers")
    print(f"(a), (b): precision {precision}, channels_last {tcfg.channels_last}, compile {tcfg.compile}; "
          f"(c): fp32, contiguous, unpinned")
    with tempfile.TemporaryDirectory() as tmp:
        results = [measure(name, args, tcfg, device, Path(tmp)) for name in names]
    print(f"{'method':<12} {'batch':>5} {'(a) device':>11} {'(b) loader':>11} {'(c) seed':>9} "
          f"{'(b)/(c)':>8} {'(b)/(a)':>8}")
    for r in results:
        print(f"{r['method']:<12} {r['batch']:>5} {r['a']:>11.1f} {r['b']:>11.1f} {r['c']:>9.1f} "
              f"{r['b'] / r['c']:>7.2f}x {r['b'] / r['a']:>7.0%}")
    print("images/s of a full training step (forward, loss, backward, optimizer step)")


if __name__ == "__main__":
    main()
