"""How long `dmlbench query` takes on a run: loading the model (PyTorch or ONNX) and the gallery, then one query.

    python benchmarks/query_speed.py --run <run> [--onnx] [--repeat 20]

Run it from the workspace (the demo run after `dvc repro`; `--onnx` after `dmlbench export --run <run>`). It prints
the figures; nothing here is a timed test.
"""

import argparse
import statistics
import time
from pathlib import Path

import torch

from dmlbench.cli.query import load_gallery, open_run, search
from dmlbench.cli.runs import Workspace


def main() -> None:
    args = _arguments()
    ws = Workspace(Path("."))
    start = time.perf_counter()
    opened = open_run(ws, args.run, args.onnx)
    loaded = time.perf_counter()
    gallery = load_gallery(ws, opened, args.gallery)
    ready = time.perf_counter()
    image = ws.prepared(opened.run) / gallery["paths"][0]  # a gallery image: removed from its own list
    times = []
    for _ in range(args.repeat):
        begin = time.perf_counter()
        search(ws, opened, gallery, [image], args.k)
        times.append(time.perf_counter() - begin)
    engine = "onnxruntime" if args.onnx else "PyTorch"
    print(f"run {args.run} ({engine}, {torch.get_num_threads()} threads): model load {loaded - start:.2f} s, "
          f"{args.gallery} gallery of {len(gallery['labels'])} images {ready - loaded:.2f} s; one query (read, "
          f"embed, rank, top {args.k}): median {statistics.median(times) * 1000:.0f} ms, max "
          f"{max(times) * 1000:.0f} ms over {args.repeat}")


def _arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--onnx", action="store_true")
    parser.add_argument("--gallery", choices=("test", "train"), default="test")
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=20)
    return parser.parse_args()


if __name__ == "__main__":
    main()
