"""The runs a workspace holds, for `dmlbench query` and `dmlbench export`: each file located, read as untrusted
and checked against the run it is asked for, with one line per problem."""

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from dmlbench.errors import DmlbenchError
from dmlbench.identity import RunPaths, prepared_dir
from dmlbench.methods import get_method
from dmlbench.methods.method import recorded_normalization
from dmlbench.params.load import build
from dmlbench.retrieval.evaluation import load_embeddings
from dmlbench.training.model_file import load_model_alone

RUN_NAME = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9_.+-]*")  # what identity.Run.name produces; never "..", never "/"
EXPORTS = Path("exports")  # dmlbench export writes exports/<run>/model.onnx (+ .data) and model.json


@dataclass(frozen=True)
class Workspace:
    """A dmlbench checkout (or any folder) holding models/, embeddings/, data/prepared/ and exports/."""

    root: Path

    def model(self, name: str) -> Path:
        return self.root / RunPaths.of(name).model

    def embeddings(self, name: str) -> Path:
        return self.root / RunPaths.of(name).embeddings

    def metrics(self, name: str) -> Path:
        return self.root / RunPaths.of(name).metrics

    def onnx(self, name: str) -> Path:
        return self.root / EXPORTS / name / "model.onnx"

    def onnx_record(self, name: str) -> Path:
        return self.root / EXPORTS / name / "model.json"

    def prepared(self, record: dict) -> Path:
        return self.root / prepared_dir(record["dataset"], record["crop"])

    def runs(self) -> list[str]:
        """Names of the runs with a model file or an ONNX export, sorted."""
        names = {p.parent.name for p in (self.root / "models").glob("*/model.pt")}
        names |= {p.parent.name for p in (self.root / EXPORTS).glob("*/model.onnx")}
        return sorted(n for n in names if RUN_NAME.fullmatch(n))

    def check_run(self, name: str, onnx: bool) -> None:
        """Refuse a name that is not a run of this workspace (with or without its ONNX export)."""
        path = self.onnx(name) if onnx else self.model(name)
        if not RUN_NAME.fullmatch(name) or not path.is_file():
            what = "an ONNX export (run dmlbench export --run <run> first)" if onnx else "a model file"
            raise DmlbenchError(f"no such run {name!r} with {what} under {self.root.resolve()}: dmlbench query "
                                f"--list shows the {len(self.runs())} runs there")


def load_torch_model(ws: Workspace, name: str) -> tuple[torch.nn.Module, dict]:
    """The run's model (eval mode) and its saved record; refuses a model file that belongs to another run."""
    model, saved = load_model_alone(ws.model(name))
    _check_owner(ws.model(name), saved["run"], name)
    return model.eval(), saved


def load_onnx_record(ws: Workspace, name: str) -> dict:
    """The record dmlbench export wrote beside the ONNX file ("run", "config", "side", "check")."""
    path = ws.onnx_record(name)
    try:
        record = json.loads(path.read_text())
        if not (isinstance(record, dict) and isinstance(record.get("run"), dict)
                and isinstance(record.get("config"), dict)):
            raise ValueError('no "run" and "config" objects')
    except (OSError, ValueError) as exc:
        raise DmlbenchError(f"cannot read {path} ({type(exc).__name__}): rerun dmlbench export --run {name}") from None
    _check_owner(path, record["run"], name)
    return record


def _check_owner(path: Path, run: dict, name: str) -> None:
    if run.get("name") != name:
        raise DmlbenchError(f"{path} holds the model of run {run.get('name')!r}, not {name!r} (a model from other "
                            f"params): rerun dvc repro for that run, or pass --run {run.get('name')}")


def run_transform(record: dict, source: Path):
    """(method, its config, the run's test transform) rebuilt from a model file's record, or an export's
    (``source`` names the file): with the input normalisation the run trained with, as that file recorded it."""
    run = record["run"]
    method = get_method(run["method"])
    cfg = build(method.config_cls, record["config"], run["method"])
    norm = recorded_normalization(method, cfg, run["backbone"], record.get("training"), source)
    return method, cfg, method.test_transform(cfg, norm)


def evaluation_gallery(ws: Workspace, name: str, run: dict) -> dict:
    """The embeddings the evaluate stage ranked against: the test split, or the gallery of a query/gallery
    dataset ({"embeddings", "labels", "paths"}); refuses a file embedded with another run's model."""
    path = ws.embeddings(name)
    try:
        saved = load_embeddings(path, run)
    except DmlbenchError as exc:
        if "comes from another run" not in str(exc):  # the stamp check's wording (retrieval/evaluation.py)
            raise
        raise DmlbenchError(f"embeddings file {path} was embedded with another model than {ws.model(name)} (a "
                            f"model from other params): rerun dvc repro for run {name}") from None
    splits = saved["splits"]
    if not splits:
        raise DmlbenchError(f"the gallery of run {name} is empty ({path} holds no split): rerun dvc repro for it")
    return splits["test"] if "test" in splits else splits["gallery"]


def list_runs(ws: Workspace) -> str:
    """A table of the workspace's runs: which files each has, and its test Recall@1 when evaluate ran."""
    from tabulate import tabulate

    names = ws.runs()
    if not names:
        return f"no runs under {ws.root.resolve()}: train one with dvc repro (models/<run>/model.pt)"
    rows = [(name, _yes(ws.model(name)), _yes(ws.embeddings(name)), _yes(ws.onnx(name)), _recall_at_1(ws, name))
            for name in names]
    return tabulate(rows, headers=["run", "model", "gallery (test)", "onnx", "R@1"])


def _yes(path: Path) -> str:
    return "yes" if path.is_file() else "-"


def _recall_at_1(ws: Workspace, name: str) -> str:
    """The run's Recall@1 from its metrics file, or '-' when it has none that can be read."""
    try:
        return f"{float(json.loads(ws.metrics(name).read_text())['metrics']['recall@1']):.4f}"
    except (OSError, ValueError, KeyError, TypeError):
        return "-"
