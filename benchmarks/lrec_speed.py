"""LREC training step, the learners fused (grouped convolutions) vs one after the other, side by side in one run.

The forms: "fused" and "loop" are the one LREC model with ``execution`` set (the loop runs each learner on its
slices of the fused weights: what the CPU runs), "modules" is the test reference (E separate modules, same
weights). Each timed step is forward + loss + backward + Adam step on the same batch.
Usage: python benchmarks/lrec_speed.py [--device cpu] [--backbone resnet18] [--learners 48] [--batch-size 10]
       [--image-size 64] [--steps 5] [--warmup-steps 1] [--amp] [--forms fused,loop,modules]
CPU check: the defaults; GPU (the seed's setting): --device cuda --image-size 256 --amp
Memory estimate: --activations [--backbone resnet50 --image-size 256 --amp] measures the bytes autograd saves for
backward with 1 and 2 learners on this device and extrapolates to --learners, plus weights, gradients and Adam.
"""

import argparse
import time

import numpy as np
import torch

from dmlbench.losses.meta_class_ce import meta_class_cross_entropy
from dmlbench.models.lrec import build_pair
from dmlbench.models.meta_classes import assign_meta_classes

CLASSES, META_CLASSES = 98, 12  # CARS196's training classes; the seed's meta classes there


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--learners", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per form")
    parser.add_argument("--warmup-steps", type=int, default=1)
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (GPU)")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--forms", default="fused,loop", help="comma-separated: fused, loop, modules")
    parser.add_argument("--activations", action="store_true", help="estimate one training step's memory instead")
    return parser.parse_args()


def saved_bytes(model, images, amp: bool) -> int:
    """Bytes of the distinct tensors autograd keeps for backward in one training forward (activations)."""
    seen: dict[tuple, int] = {}

    def pack(tensor):
        key = (tensor.untyped_storage().data_ptr(), tensor.dtype)
        seen[key] = max(seen.get(key, 0), tensor.untyped_storage().nbytes())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=amp):
            model(images)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    return sum(size for (ptr, _), size in seen.items() if ptr not in params)


def memory_estimate(backbone: str, learners: int, batch_size: int, image_size: int, amp: bool,
                    device: torch.device) -> dict[str, int]:
    """Bytes of one fused training step, from 1 and 2 learners measured on ``device``: activations saved for
    backward (stem + ``learners`` x one learner) and fp32 weights, gradients and Adam's two moments."""
    images = torch.randn(batch_size, 3, image_size, image_size, device=device)
    sizes = {}
    for count in (1, 2):
        table = np.zeros((count, CLASSES), dtype=np.int64)  # the values do not change the sizes
        fused, _ = build_pair(backbone, False, count, table, META_CLASSES)
        fused.execution = "fused"  # the GPU's form, whatever device measures it
        sizes[count] = (saved_bytes(fused.to(device).train(), images, amp), sum(
            p.numel() for p in fused.parameters()))
    learner = [sizes[2][i] - sizes[1][i] for i in range(2)]
    stem = [sizes[1][i] - learner[i] for i in range(2)]
    activations, params = (stem[i] + learners * learner[i] for i in range(2))
    return {"stem": stem[0], "learner": learner[0], "activations": activations, "parameters": params,
            "static": params * 4 * 4}  # fp32 weights, gradients and Adam's two moments


def estimate_memory(args, device) -> None:
    """Print ``memory_estimate`` for the command line's network."""
    bytes_ = memory_estimate(args.backbone, args.learners, args.batch_size, args.image_size, args.amp, device)
    gib = 2**30
    print(f"lrec_speed --activations: {args.backbone} x {args.learners}, batch {args.batch_size}, "
          f"{args.image_size} px, amp {args.amp}, measured on {device}")
    print(f"  activations saved for backward: stem {bytes_['stem'] / gib:.2f} GiB + {bytes_['learner'] / gib:.2f} GiB "
          f"per learner -> {bytes_['activations'] / gib:.1f} GiB")
    print(f"  parameters {bytes_['parameters']:,} -> weights + gradients + Adam {bytes_['static'] / gib:.1f} GiB; "
          f"total {(bytes_['static'] + bytes_['activations']) / gib:.1f} GiB (before allocator overhead and "
          f"workspace)")


def time_steps(model, images, labels, args) -> float:
    """Seconds per training step, after warm-up steps."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    device = images.device

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
            _, logits, meta = model(images)
        loss = meta_class_cross_entropy(logits, meta, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(args.warmup_steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / args.steps


def main() -> None:
    args = parse_args()
    torch.manual_seed(0)
    device = torch.device(args.device)
    if args.activations:
        return estimate_memory(args, device)
    meta = assign_meta_classes(CLASSES, META_CLASSES, args.learners, 0)
    fused, modules = build_pair(args.backbone, False, args.learners, meta, META_CLASSES)
    images = torch.randn(args.batch_size, 3, args.image_size, args.image_size, device=device)
    labels = torch.randint(0, CLASSES, (args.batch_size,), device=device)
    print(f"lrec_speed: {args.backbone} x {args.learners} learners, batch {args.batch_size}, {args.image_size} px, "
          f"{device}, threads {torch.get_num_threads()}, amp {args.amp}")
    seconds = {}
    for name in args.forms.split(","):
        model = modules if name == "modules" else fused
        if name != "modules":
            fused.execution = name
        model = model.to(device).train()
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
            images = images.contiguous(memory_format=torch.channels_last)
        seconds[name] = time_steps(model, images, labels, args)
        for parameter in model.parameters():  # free the gradients before the other form's step
            parameter.grad = None
        peak = f", peak {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB" if device.type == "cuda" else ""
        print(f"  {name:7s}: {seconds[name]:.3f} s/step{peak}", flush=True)
        model.cpu()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    for name in seconds:
        if name != "fused" and "fused" in seconds:
            print(f"  ratio {name} / fused: {seconds[name] / seconds['fused']:.2f}x (above 1: fused is faster)")


if __name__ == "__main__":
    main()
