"""``python -m dmlbench.grid write``: regenerate the cells of benchmarks/params.yaml from the recipes;
``python -m dmlbench.grid sets <cell>``: the cell's params as ``dvc exp run -S`` options."""

import dataclasses
import sys

from dmlbench.errors import DmlbenchError
from dmlbench.grid import GRID_PARAMS, GRID_SECTIONS, dvc_sets, params_of, write_grid
from dmlbench.params.load import plain
from dmlbench.pipeline.experiment import method_config
from dmlbench.pipeline.stage import ERROR_STATUS, fail


def main(argv: list[str]) -> int:
    """``write``: regenerate the cells; ``sets <cell>``: the cell's params as dvc exp run options."""
    if argv[:1] == ["write"]:
        write_grid()
        print(f"wrote the cells of {GRID_PARAMS}")
        return 0
    if len(argv) == 2 and argv[0] == "sets":
        params = params_of(argv[1])
        _, cfg = method_config(params, params["method"], params["dataset"])  # per_dataset resolved, values checked
        params[params["method"]] = plain(dataclasses.asdict(cfg))
        print(" ".join(_quote(o) for o in dvc_sets(params, (params["method"], *GRID_SECTIONS))))
        return 0
    print("usage: python -m dmlbench.grid write | sets <cell>", file=sys.stderr)
    return ERROR_STATUS


def _quote(option: str) -> str:
    return f"'{option}'" if any(c in option for c in " []{},") else option


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except DmlbenchError as exc:
        fail(exc)
