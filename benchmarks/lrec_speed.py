"""LREC training step, the learners fused (grouped convolutions) vs one after the other, side by side in one run.

Both forms hold the same weights; each timed step is forward + loss + backward + Adam step on the same batch.
Usage: python benchmarks/lrec_speed.py [--device cpu] [--backbone resnet18] [--learners 48] [--batch-size 10]
       [--image-size 64] [--steps 5] [--warmup-steps 1] [--amp]
CPU check: the defaults; GPU (the seed's setting): --device cuda --image-size 256 --amp
"""

import argparse
import time

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
    return parser.parse_args()


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
    meta = assign_meta_classes(CLASSES, META_CLASSES, args.learners, 0)
    fused, loop = build_pair(args.backbone, False, args.learners, meta, META_CLASSES)
    images = torch.randn(args.batch_size, 3, args.image_size, args.image_size, device=device)
    labels = torch.randint(0, CLASSES, (args.batch_size,), device=device)
    print(f"lrec_speed: {args.backbone} x {args.learners} learners, batch {args.batch_size}, {args.image_size} px, "
          f"{device}, threads {torch.get_num_threads()}, amp {args.amp}")
    seconds = {}
    for name, model in (("fused", fused), ("loop", loop)):
        model = model.to(device).train()
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
            images = images.contiguous(memory_format=torch.channels_last)
        seconds[name] = time_steps(model, images, labels, args)
        peak = f", peak {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB" if device.type == "cuda" else ""
        print(f"  {name:5s}: {seconds[name]:.3f} s/step{peak}", flush=True)
        model.cpu()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print(f"  ratio loop / fused: {seconds['loop'] / seconds['fused']:.2f}x")


if __name__ == "__main__":
    main()
