"""The trained-model file: weights plus everything needed to rebuild it from the file alone, and to check whose it is.

Holds the run's identity, the method's config, the training classes, the facts of how it was trained (resolved
precision, pretrained, epochs) and the weights, every trained state (a loss's proxies included) among them.
"""

import dataclasses
import json
from pathlib import Path

import torch

from dmlbench import atomic
from dmlbench.params.load import build, plain
from dmlbench.errors import DmlbenchError
from dmlbench.identity import Run
from dmlbench.provenance import PROVENANCE_FILE

FORMAT = 2  # bump when the file's layout changes: an older file is then refused with "rerun train"
READABLE_FILE = "model.json"  # beside model.pt, for models with a readable_record(classes) (LREC's meta classes)


def save_model(path: Path, run: Run, cfg, classes: list[int], facts: dict, model: torch.nn.Module) -> None:
    """Write weights, build arguments and training facts atomically."""
    atomic.save_torch(path, {
        "format": FORMAT, "run": run.record(), "config": plain(dataclasses.asdict(cfg)), "classes": classes,
        "training": facts, "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    })
    readable = getattr(model, "readable_record", None)
    if callable(readable):  # what a person may want to read without torch; model.pt stays the source of truth
        atomic.write_json(Path(path).with_name(READABLE_FILE), readable(classes))


def read_model_file(path: Path) -> dict:
    """The saved dict, or one line saying the file is missing, unreadable or of another format."""
    if not Path(path).is_file():
        raise DmlbenchError(f"model file {path} not found: run the train stage first (dvc repro train)")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file; torch raises many types
        raise DmlbenchError(f"cannot read model file {path} ({type(exc).__name__}): rerun dvc repro train") from None
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise DmlbenchError(f"model file {path} is not a dmlbench model of format {FORMAT} (an older or foreign "
                            f"file): rerun dvc repro train")
    return saved


def read_provenance(model_path: Path) -> dict | None:
    """The provenance record the train stage wrote beside ``model_path``; None when there is none (older runs)."""
    path = Path(model_path).parent / PROVENANCE_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def load_model(path: Path, run: Run, method, cfg) -> tuple[torch.nn.Module, dict]:
    """Rebuild the model of ``run`` from ``path`` and return it with the saved record; refuse another run's file."""
    saved = read_model_file(path)
    if plain(saved["run"]) != plain(run.record()) or saved["config"] != plain(dataclasses.asdict(cfg)):
        raise DmlbenchError(f"model file {path} was trained with other params than params.yaml describes "
                            f"(run {saved['run'].get('name')}): rerun dvc repro so train runs again")
    return _rebuild(saved, method, cfg), saved


def load_model_alone(path: Path) -> tuple[torch.nn.Module, dict]:
    """Rebuild a model from its file alone (no params.yaml): for a query tool or an export."""
    from dmlbench.methods import get_method

    saved = read_model_file(path)
    method = get_method(saved["run"]["method"])
    cfg = build(method.config_cls, saved["config"], saved["run"]["method"])
    return _rebuild(saved, method, cfg), saved


def _rebuild(saved: dict, method, cfg) -> torch.nn.Module:
    run = saved["run"]
    model = method.build_model(cfg, run["backbone"], len(saved["classes"]), False, run["seed"])
    model.load_state_dict(saved["state_dict"])
    return model
