"""Evaluation speed at SOP size: dmlbench's retrieval_metrics vs faiss IndexFlatIP search (k=1001), same cores.

Usage: python benchmarks/eval_speed.py [--n 60502] [--dim 512] [--threads 2] [--chunk-size 1024] [--repeat 1]
       python benchmarks/eval_speed.py --hamming   (dmlbench's Hamming mode alone, same size)
       python benchmarks/eval_speed.py --dense-only --dim 24576   (dmlbench's cosine mode alone: LREC's
       48 x 512 SOP embedding; no faiss needed)
       python benchmarks/eval_speed.py --intervals --repeat 3   (dmlbench's cosine mode without and with the
       bootstrap intervals evaluate writes, same size, taking turns; no faiss needed)

Self-retrieval: every item queries all others, itself excluded. Each side runs in its own subprocess, so its
peak RSS (ru_maxrss) is its own; both generate the same seeded data. faiss is a benchmark-only comparison.
Both sides run with OMP_WAIT_POLICY=PASSIVE unless it is set: on a machine shared with other work, OpenMP
threads that spin while waiting steal the cores they wait for (set OMP_WAIT_POLICY=ACTIVE to see it).
"""

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

KS = (1, 10, 100, 1000)
NOISE = 2.2  # noise per coordinate vs unit-variance class centres: Recall@1 about 0.8 at SOP size
SOP_IMAGES, SOP_CLASSES = 60502, 11316
INSTALL_FAISS = "faiss is not installed: pip install faiss-cpu (a benchmark-only comparison, not a dmlbench dependency)"


def class_sizes(rng: np.random.Generator, n: int) -> np.ndarray:
    """SOP-like class sizes: 2 to 12 images, about 5.3 on average, summing to n."""
    classes = max(1, round(n * SOP_CLASSES / SOP_IMAGES))
    sizes = 2 + rng.binomial(10, (n / classes - 2) / 10, classes)
    while sizes.sum() != n:  # nudge random classes, within 2..12, until the total is exact
        step = 1 if sizes.sum() < n else -1
        i = rng.integers(classes)
        if 2 <= sizes[i] + step <= 12:
            sizes[i] += step
    return sizes


def make_data(n: int, dim: int, seed: int = 0, block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(n, dim) L2-normalised float32 embeddings (class centre + noise, shuffled) and their labels.

    Filled ``block`` rows at a time, so generating adds only a block to the n x dim array itself (at 60,502 x
    24,576 the array is 5.9 GB; whole-array temporaries would triple that before evaluation starts).
    """
    rng = np.random.default_rng(seed)
    sizes = class_sizes(rng, n)
    labels = rng.permutation(np.repeat(np.arange(len(sizes)), sizes))
    centres = rng.standard_normal((len(sizes), dim), dtype=np.float32)
    x = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, block):
        rows = centres[labels[start:start + block]] + NOISE * rng.standard_normal((min(block, n - start), dim),
                                                                                   dtype=np.float32)
        x[start:start + block] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return x, labels


def run_faiss(x: np.ndarray, labels: np.ndarray) -> dict:
    """IndexFlatIP add + search(k = max K + 1), then Recall@K from the lists with the query dropped by index."""
    import faiss

    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    _, found = index.search(x, max(KS) + 1)
    own = found == np.arange(len(x))[:, None]
    keep = ~own & (own.any(axis=1, keepdims=True) | (np.arange(found.shape[1]) < max(KS)))
    lists = found[keep].reshape(len(x), max(KS))  # drops the query itself, or the last entry if it is absent
    hit = labels[lists] == labels[:, None]
    first = np.where(hit.any(axis=1), hit.argmax(axis=1), max(KS))
    return {f"recall@{k}": float((first < k).mean()) for k in KS}


def run_dmlbench(x: np.ndarray, labels: np.ndarray, chunk_size: int, similarity: str) -> dict:
    """retrieval_metrics in self-retrieval mode: Recall@K, MAP@R and R-Precision."""
    import torch

    from dmlbench.retrieval.metrics import retrieval_metrics

    return retrieval_metrics(torch.from_numpy(x), torch.from_numpy(labels), ks=KS, chunk_size=chunk_size,
                             similarity=similarity)


def run_intervals(x: np.ndarray, labels: np.ndarray, chunk_size: int) -> dict:
    """What evaluate does now: per-query values from one ranking, their means, then the class-bootstrap intervals
    (timed on their own as "bootstrap_wall" and "bootstrap_cpu")."""
    import torch

    from dmlbench.retrieval.intervals import metric_intervals
    from dmlbench.retrieval.metrics import per_query_values

    values = per_query_values(torch.from_numpy(x), torch.from_numpy(labels), ks=KS, chunk_size=chunk_size)
    wall, cpu = time.perf_counter(), time.process_time()
    bounds = metric_intervals({"dense": values})["dense"]
    return {"metrics": values.metrics(), "bootstrap_wall": time.perf_counter() - wall,
            "bootstrap_cpu": time.process_time() - cpu, "intervals": bounds}


def set_threads(name: str, threads: int) -> None:
    """Import the side's library and give it `threads` threads."""
    if name == "faiss":
        import faiss

        faiss.omp_set_num_threads(threads)
    else:
        import torch

        import dmlbench.retrieval.intervals  # noqa: F401  (imported here so the timing leaves them out)
        import dmlbench.retrieval.metrics  # noqa: F401

        torch.set_num_threads(threads)


def side(args) -> None:
    """One side in this process: print a JSON line with its times, peak RSS and metrics."""
    x, labels = make_data(args.n, args.dim)
    set_threads(args.side, args.threads)  # also imports the side's library, outside the timing
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    wall, cpu = time.perf_counter(), time.process_time()
    if args.side == "faiss":
        result = {"metrics": run_faiss(x, labels)}
    elif args.side == "intervals":
        result = run_intervals(x, labels, args.chunk_size)
    else:
        result = {"metrics": run_dmlbench(x, labels, args.chunk_size, args.side)}
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"wall": wall, "cpu": cpu, "peak_gb": peak, "before_gb": rss_before, **result}))


def spawn(args, name: str) -> dict:
    """Run one side in a fresh subprocess limited to args.threads threads."""
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               OMP_WAIT_POLICY=wait_policy())
    cmd = [sys.executable, __file__, "--side", name, "--n", str(args.n), "--dim", str(args.dim),
           "--threads", str(args.threads), "--chunk-size", str(args.chunk_size)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"the {name} run failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def wait_policy() -> str:
    """OMP_WAIT_POLICY for both sides: the caller's, else PASSIVE."""
    return os.environ.get("OMP_WAIT_POLICY", "PASSIVE")


def fastest(args, names: list[str]) -> dict:
    """The fastest of args.repeat runs per side, the sides taking turns so both see the same machine load."""
    runs = {name: [] for name in names}
    for _ in range(args.repeat):
        for name in names:
            runs[name].append(spawn(args, name))
    return {name: min(results, key=lambda result: result["wall"]) for name, results in runs.items()}


def report(name: str, result: dict) -> None:
    print(f"{name:9s} {result['wall']:8.2f} s wall  {result['cpu']:8.2f} s cpu  peak RSS {result['peak_gb']:.2f} GB "
          f"({result['before_gb']:.2f} GB before evaluating)")


def compare_intervals(args) -> None:
    """Evaluation without intervals (the metrics alone) and with them (what evaluate does), and their ratio."""
    results = fastest(args, ["cosine", "intervals"])
    without, with_ = results["cosine"], results["intervals"]
    report("without", without)
    report("with", with_)
    print(f"bootstrap alone: {with_['bootstrap_wall']:.2f} s wall, {with_['bootstrap_cpu']:.2f} s cpu (1,000 "
          f"resamples of the test classes)")
    print(f"ratio with / without intervals: {with_['wall'] / without['wall']:.3f} wall, "
          f"{with_['cpu'] / without['cpu']:.3f} cpu")
    print("metrics:  ", json.dumps(with_["metrics"]))
    print("intervals:", json.dumps(with_["intervals"]))
    same = with_["metrics"] == without["metrics"]
    print("metrics equal with and without intervals:", same)
    assert same, "the point metrics differ with intervals"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=SOP_IMAGES, help="images (more than 1001)")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=1, help="runs per side; the fastest is reported")
    parser.add_argument("--hamming", action="store_true", help="time dmlbench's Hamming mode alone")
    parser.add_argument("--dense-only", action="store_true", help="time dmlbench's cosine mode alone (no faiss)")
    parser.add_argument("--intervals", action="store_true",
                        help="time dmlbench's cosine mode without, then with, the bootstrap intervals (no faiss)")
    parser.add_argument("--side", choices=("faiss", "cosine", "hamming", "intervals"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        return side(args)
    if not (args.hamming or args.dense_only or args.intervals) and importlib.util.find_spec("faiss") is None:
        sys.exit(INSTALL_FAISS)
    print(f"self-retrieval, {args.n} x {args.dim} float32, {args.threads} threads, chunk_size {args.chunk_size}, "
          f"Recall@{KS}, {os.cpu_count()} CPUs here, OMP_WAIT_POLICY={wait_policy()}")
    if args.intervals:
        return compare_intervals(args)
    if args.hamming or args.dense_only:
        alone = "hamming" if args.hamming else "cosine"
        result = fastest(args, [alone])[alone]
        report(alone, result)
        print(json.dumps(result["metrics"]))
        return
    results = fastest(args, ["cosine", "faiss"])
    ours, theirs = results["cosine"], results["faiss"]
    report("dmlbench", ours)
    report("faiss", theirs)
    print(f"ratio dmlbench / faiss: {ours['wall'] / theirs['wall']:.2f} wall, {ours['cpu'] / theirs['cpu']:.2f} cpu")
    print("dmlbench:", json.dumps(ours["metrics"]))
    print("faiss:   ", json.dumps(theirs["metrics"]))
    # The embeddings are continuous random values, so exact ties (where faiss's order may differ) do not occur.
    same = all(ours["metrics"][f"recall@{k}"] == theirs["metrics"][f"recall@{k}"] for k in KS)
    print("recall values equal:", same)
    assert same, "Recall@K differs between dmlbench and faiss"


if __name__ == "__main__":
    main()
