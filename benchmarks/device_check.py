"""One prepared device check, printed as one Markdown table within a time budget (each section has its seconds):

- train: each method's seed recipe (the first cell of benchmarks/recipes/<method>.yaml, random init): images/s of
  dmlbench's training step on a batch kept on the device, the same with deterministic kernels off, through the
  real loader, and the seeds' plain fp32 loop (benchmarks/train_speed.py); peak GPU memory of the step and the loop;
- determinism: a one-epoch cell of a recipe (train.deterministic on) trained, embedded and evaluated twice: its
  metrics, weights and embeddings must be identical;
- lrec: LREC's step fused and learner by learner at 256 px with 48 learners (time, memory), beside the memory
  lrec_speed.py estimates for the fused step.
A row that fails prints its error and the others still run. Exit status 1 when a row failed or was skipped.
Usage: python benchmarks/device_check.py [--device auto]; on the CPU: --tiny (tiny images, one step, 4 learners).
"""

import argparse
import contextlib
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

import lrec_speed
import train_speed as ts
from check_rows import Budget, Lazy, Row, gib, measure, one_line, run_row, table
from dmlbench.identity import Experiment, RunPaths
from dmlbench.methods import METHODS
from dmlbench.pipeline.experiment import load_experiment
from dmlbench.pipeline.run_name import run_of
from dmlbench.params.sections import TrainConfig
from dmlbench.pipeline.steps import embed_run, evaluate_run
from dmlbench.training.distributed import SINGLE, device_for
from dmlbench.training.loop import TrainJob, train
from dmlbench.models.precision import resolve_precision

SECTIONS = {"train": 210, "determinism": 60, "lrec": 150}  # default seconds: 7 minutes, 8 with setup and margin
COLUMNS = ("device img/s", "det. off img/s", "loader img/s", "seed fp32 img/s", "peak GiB", "seed peak GiB")
# The seeds' sizes on a GPU; --tiny shrinks them so that the CPU runs the same code paths in seconds.
FULL = dict(backbone=None, image_size=None, batch_size=None, learners=None, steps=15, warmup=5, source=512,
            unique=8, workers=min(ts.SEED_WORKERS, os.cpu_count() or 1), lrec_backbone="resnet50", lrec_learners=48,
            lrec_size=256, lrec_batch=None, lrec_precisions="fp32,bf16", lrec_steps=5, lrec_warmup=2,
            det_classes=16, det_images=16, det_batch=16)  # LREC: fewer steps, each one is 48 networks' work
TINY = dict(backbone="resnet18", image_size=32, batch_size=4, learners=4, steps=1, warmup=0, source=40, unique=2,
            workers=0, lrec_backbone="resnet18", lrec_learners=4, lrec_size=32, lrec_batch=4, lrec_precisions="fp32",
            lrec_steps=1, lrec_warmup=0, det_classes=8, det_images=3, det_batch=4)
TEXT_KEYS = ("backbone", "lrec_backbone", "lrec_precisions")
HELP = {"backbone": "of every method (none: each recipe's)", "image_size": "training crop of every method (none: each "
        "recipe's; other sides keep their ratio)", "batch_size": "of every method (none: each recipe's)",
        "learners": "LREC's in the train section (none: the recipe's)", "steps": "timed steps per mode",
        "warmup": "untimed steps first", "source": "side of the generated JPEGs", "unique": "distinct JPEGs per class",
        "workers": "loader processes", "lrec_size": "LREC section's crop", "lrec_batch": "(none: the recipe's)",
        "lrec_precisions": "comma-separated", "det_classes": "classes of the determinism cell's data (half train)",
        "det_images": "images per class there", "det_batch": "batch of the determinism cell"}
DET_KS = (1, 2, 4)  # the determinism cell's Recall@K: any list will do; this one fits the tiny 12-image test split


def setting(bench, tcfg: TrainConfig) -> str:
    precision = resolve_precision(tcfg.precision, bench.device, "train.precision")
    kernels = "deterministic" if tcfg.deterministic else "autotuned"
    return f"{bench.backbone}, batch {bench.batch}, {bench.crop} px, {precision}, {kernels}"


def train_section(o, device: Lazy, data: Lazy) -> list:
    """A row per method: its recipe's step on the device (deterministic, then not), through the loader, seed loop."""
    def work(name):
        def run(row):
            bench = ts.make_bench(name, ts.Shape(o.backbone, o.image_size, o.batch_size, o.learners), data.get(),
                                  device.get(), o.workers, o.warmup, o.steps)
            row.setting = setting(bench, bench.tcfg)
            off = dataclasses.replace(bench.tcfg, deterministic=False)
            measure(row, "device img/s", lambda: ts.on_device(bench), device, "peak GiB")
            measure(row, "det. off img/s", lambda: ts.on_device(bench, off), device)
            measure(row, "loader img/s", lambda: ts.through_loader(bench), device)
            measure(row, "seed fp32 img/s", lambda: ts.seed_loop(bench), device, "seed peak GiB")
        return run
    return [(Row(f"train {name}"), work(name)) for name in o.methods]


def cell_once(name: str, o, device: torch.device, prepared: Path, folder: Path) -> dict:
    """Train, embed and evaluate a one-epoch cell of ``name``'s recipe in ``folder``: metrics, weights, embeddings."""
    params, _ = ts.seed_recipe(name)
    params["train"].update(device=str(device), workers=o.workers, pretrained=False, deterministic=True)
    params["embed"].update(workers=o.workers)
    params["evaluate"].update(recall_ks=list(DET_KS))
    method, cfg, _, backbone = ts.recipe_config(name, ts.Shape(o.backbone, o.image_size, o.det_batch, o.learners))
    cfg = dataclasses.replace(cfg, epochs=1, **{f: 0 for f in ("warmup_epochs", "frozen_epochs") if hasattr(cfg, f)})
    # The recipe's params, validated once, on the synthetic data with this check's model shape and one epoch.
    xp = dataclasses.replace(load_experiment(params), config=cfg,
                             experiment=Experiment(name, backbone, "synthetic", "uncropped", 0, "seed"))
    run = run_of(xp, prepared)
    paths = RunPaths(model=folder / "model.pt", checkpoint=folder / "train.pt", embeddings=folder / "embeddings.pt",
                     metrics=folder / "metrics.json")
    with contextlib.redirect_stdout(sys.stderr):  # the stages' progress lines: stdout keeps the table alone
        train(TrainJob(run, method, cfg, xp.train, prepared, paths.model, folder / "live", paths.checkpoint))
        splits = embed_run(xp, run, paths, prepared)
        result = evaluate_run(xp, run, paths)
    return {"metrics": result, "weights": torch.load(paths.model, weights_only=True)["state_dict"],
            "embeddings": splits}


def first_difference(a, b, where: str = "") -> str | None:
    """Where two trees (dicts, lists, numbers, tensors) first differ, or None when they are identical."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            found = first_difference(a.get(key), b.get(key), f"{where}.{key}" if where else str(key))
            if found:
                return found
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        return next((d for i, (x, y) in enumerate(zip(a, b)) if (d := first_difference(x, y, f"{where}[{i}]"))), None)
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return None if a.shape == b.shape and torch.equal(a, b) else f"{where} (tensors differ)"
    return None if type(a) is type(b) and a == b else f"{where}: {a!r} vs {b!r}"


def determinism_section(o, device: Lazy, data: Lazy) -> list:
    """One row: the cell twice, then the first difference of their metrics, weights or embeddings."""
    def run(row):
        row.setting = f"{o.det_method}, 1 epoch, batch {o.det_batch}, train.deterministic: true, twice"
        with tempfile.TemporaryDirectory() as tmp:
            first, second = (cell_once(o.det_method, o, device.get(), data.get(), Path(tmp) / f"run{i}")
                             for i in (0, 1))
        difference = first_difference(first, second)
        if difference:
            raise RuntimeError(f"the two runs differ: {difference}")
        scores = [f"{k} {v:.4f}" for k, v in first["metrics"]["metrics"].items() if k in ("recall@1", "map@r")]
        row.result = f"identical metrics, weights and embeddings ({', '.join(scores)})"
    return [(Row(f"determinism {o.det_method}"), run)]


def lrec_section(o, device: Lazy, data: Lazy) -> list:
    """Per precision: LREC's step fused, then learner by learner on the same weights, then the memory estimate."""
    shape = ts.Shape(o.lrec_backbone, o.lrec_size, o.lrec_batch, o.lrec_learners)
    bench = Lazy(lambda: ts.make_bench("lrec", shape, data.get(), device.get(), o.workers, o.lrec_warmup,
                                       o.lrec_steps))
    seconds = {}

    def timed(precision, form):
        def run(row):
            b = bench.get()
            tcfg = dataclasses.replace(b.tcfg, precision=precision)
            row.setting = f"{b.cfg.ensemble_size} learners, " + setting(b, tcfg)
            rate = measure(row, "device img/s", lambda: ts.on_device(b, tcfg, form), device, "peak GiB")
            if rate:
                seconds[precision, form] = b.batch / rate.images_per_s
                ratio = seconds[precision, form] / seconds.get((precision, "fused"), float("nan"))
                row.result = f"{seconds[precision, form]:.3f} s/step" + (f", loop/fused {ratio:.2f}x"
                                                                          if form == "loop" else "")
        return run

    def estimate(precision):
        def run(row):
            b = bench.get()
            size = lrec_speed.memory_estimate(b.backbone, b.cfg.ensemble_size, b.batch, b.crop, precision != "fp32",
                                              b.device)
            row.setting = f"{b.cfg.ensemble_size} learners, {b.backbone}, batch {b.batch}, {b.crop} px, {precision}"
            row.cells["peak GiB"] = gib(size["activations"] + size["static"])
            row.result = (f"lrec_speed's estimate: activations {gib(size['activations'])} + weights, gradients, "
                          f"Adam {gib(size['static'])} GiB")
        return run

    rows = []
    for precision in o.lrec_precisions.split(","):
        rows += [(Row(f"lrec {form} {precision}"), timed(precision, form)) for form in ("fused", "loop")]
        rows.append((Row(f"lrec estimate {precision}"), estimate(precision)))
    return rows


def header(o, device: Lazy) -> str:
    """The machine and software the table was measured on."""
    try:
        d = device.get()
        where = (f"{torch.cuda.get_device_name(d)}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}"
                 if d.type == "cuda" else f"CPU, {torch.get_num_threads()} threads")
    except Exception as exc:
        where = f"no device ({one_line(exc)})"
    return (f"device check{' --tiny' if o.tiny else ''}: {where}; torch {torch.__version__}; {o.warmup} + {o.steps} "
            f"steps per mode (LREC {o.lrec_warmup} + {o.lrec_steps}); {o.workers} loader workers")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (--tiny: auto is the CPU)")
    parser.add_argument("--tiny", action="store_true", help="tiny images, one step, few learners (a CPU check)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated: {', '.join(SECTIONS)}")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods of the train section")
    parser.add_argument("--det-method", default="cgd", help="the recipe of the determinism cell")
    for name, seconds in SECTIONS.items():
        parser.add_argument(f"--budget-{name}", type=float, default=seconds, help=f"seconds of the {name} section")
    for key in FULL:  # --steps, --workers, --lrec-learners, ...: default from FULL, or from TINY with --tiny
        described = HELP[key] + "; " if key in HELP else ""
        parser.add_argument("--" + key.replace("_", "-"), type=str if key in TEXT_KEYS else int,
                            help=f"{described}default {FULL[key]} (--tiny: {TINY[key]})")
    o = parser.parse_args(argv)
    o.sections = [s for s in o.sections.split(",") if s]
    unknown = sorted(set(o.sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)} (choices: {', '.join(SECTIONS)})")
    for key in FULL:
        if getattr(o, key) is None:
            setattr(o, key, (TINY if o.tiny else FULL)[key])
    o.methods = [m for m in o.methods.split(",") if m]
    return o


def main(argv=None) -> list[Row]:
    """Run the chosen sections and print the table; returns its rows."""
    o = parse_args(argv)
    # Before any CUDA work: cuBLAS reads its workspace setting once, and deterministic matmuls need a fixed one.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    kept = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    start, rows = time.monotonic(), []
    device = Lazy(lambda: device_for(SINGLE, "cpu" if o.tiny and o.device == "auto" else o.device))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            data = Lazy(lambda: ts.write_dataset(Path(tmp) / "data", o.source, o.workers, o.unique))
            det_data = Lazy(lambda: ts.write_dataset(Path(tmp) / "det", o.source, o.workers, o.det_images,
                                                     o.det_classes))
            plans = {"train": (train_section, data), "determinism": (determinism_section, det_data),
                     "lrec": (lrec_section, data)}
            for name in o.sections:
                plan, source = plans[name]
                planned = plan(o, device, source)
                budget = Budget(getattr(o, f"budget_{name}"), len(planned))
                rows += [run_row(row, work, budget, device) for row, work in planned]
    finally:
        torch.use_deterministic_algorithms(kept[0])
        torch.backends.cudnn.benchmark = kept[1]
    print(header(o, device))
    print(table(rows, COLUMNS))
    print(f"{sum(r.ok for r in rows)} of {len(rows)} rows ok in {time.monotonic() - start:.0f} s")
    return rows


if __name__ == "__main__":
    sys.exit(0 if all(r.ok for r in main()) else 1)
