"""The `dmlbench` console script: `dmlbench query` (search a run's gallery with images), `dmlbench export`
(ONNX) and `dmlbench compare` (two runs' paired differences). Every bad input ends in one `dmlbench: error:` line
and exit status 2, as in the stages."""

import argparse
import sys
import time
from pathlib import Path

from dmlbench.errors import DmlbenchError
from dmlbench.pipeline import stage


class _Parser(argparse.ArgumentParser):
    """argparse's errors as one DmlbenchError line instead of a usage block."""

    def error(self, message: str):
        raise DmlbenchError(f"{self.prog}: {message} (see {self.prog} --help)")


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="dmlbench", description=__doc__.split("\n")[0])
    commands = top.add_subparsers(dest="command", required=True, parser_class=_Parser)
    query = commands.add_parser("query", help="rank a run's gallery for each image")
    query.add_argument("images", nargs="*", type=Path, metavar="IMAGE")
    query.add_argument("--run", help="the run's name (models/<run>/); --list shows them")
    query.add_argument("--k", type=int, default=8, help="results per image (default 8)")
    query.add_argument("--gallery", choices=("test", "train"), default="test",
                       help="test: the evaluation gallery embed wrote; train: the training images, embedded now")
    query.add_argument("--out", type=Path, default=Path("query.png"),
                       help="the picture, .png or .jpg (default query.png); never a file git tracks or a file "
                            "under the pipeline's output folders")
    query.add_argument("--onnx", action="store_true", help="embed with exports/<run>/model.onnx (onnxruntime)")
    query.add_argument("--list", action="store_true", help="list the runs of the workspace and stop")
    query.add_argument("--root", type=Path, default=Path("."), help="the workspace (default: here)")
    export = commands.add_parser("export", help="write a run's embedding network as ONNX under exports/<run>/")
    export.add_argument("--run", required=True, help="the run's name (dmlbench query --list shows them)")
    export.add_argument("--root", type=Path, default=Path("."), help="the workspace (default: here)")
    compare = commands.add_parser("compare", help="each metric of two runs on the same test set: A - B with a "
                                                  "paired-bootstrap 95 %% interval and a verdict")
    compare.add_argument("run_a", metavar="RUN_A", help="a run (metrics/runs/<run>.json) or a grid cell "
                                                        "(benchmarks/metrics/<cell>.json)")
    compare.add_argument("run_b", metavar="RUN_B", help="the other run, evaluated on the same test set")
    compare.add_argument("--root", type=Path, default=Path("."), help="the workspace (default: here)")
    runs = commands.add_parser("runs", help="every run's identity, provenance and metrics as one table (a pandas "
                                            "frame): printed, or written with --csv")
    runs.add_argument("--csv", type=Path, metavar="FILE", help="write every column to FILE instead of printing")
    runs.add_argument("--grid", action="store_true", help="the grid's cells (benchmarks/metrics/) instead")
    runs.add_argument("--root", type=Path, default=Path("."), help="the workspace (default: here)")
    return top


def main(argv: list[str] | None = None) -> int:
    """Run one command; a DmlbenchError becomes one line on stderr and exit status 2."""
    try:
        args = parser().parse_args(argv)
        {"query": _query, "export": _export, "compare": _compare, "runs": _runs}[args.command](args)
    except DmlbenchError as exc:
        return stage.report(exc)  # the stages' own line and status, without their sys.exit
    return 0


def _query(args) -> None:
    from dmlbench.cli.query import check_out, load_gallery, open_run, report, search
    from dmlbench.cli.runs import Workspace, list_runs

    ws = Workspace(args.root)
    if args.list:
        print(list_runs(ws))
        return
    if not args.run or not args.images:
        raise DmlbenchError("dmlbench query needs --run <run> and at least one IMAGE (dmlbench query --list shows "
                            "the runs)")
    check_out(args.out, args.root)  # before any work: a refused --out would waste it
    opened = open_run(ws, args.run, args.onnx)
    gallery = load_gallery(ws, opened, args.gallery)
    answer = search(ws, opened, gallery, args.images, args.k)
    report(opened, gallery, args.images, answer, args.out, ws.prepared(opened.run))


def _export(args) -> None:
    from dmlbench.cli.export import export_run
    from dmlbench.cli.runs import Workspace

    start = time.perf_counter()
    ws = Workspace(args.root)
    record = export_run(ws, args.run)
    check = record["check"]
    print(f"export: {args.run} -> {ws.onnx(args.run)}{' (+ external data)' if record['external_data'] else ''}: "
          f"{check['images']} images, lowest cosine {check['min_cosine']:.6f}, Recall@1 {check['recall@1']:.4f} "
          f"as PyTorch ({time.perf_counter() - start:.1f} s)")


def _compare(args) -> None:
    from dmlbench.cli.compare import compare_runs

    print(compare_runs(args.root, args.run_a, args.run_b))


def _runs(args) -> None:
    from dmlbench.cli.runs_frame import runs_table

    print(runs_table(args.root, args.grid, args.csv))


if __name__ == "__main__":
    sys.exit(main())
