"""A run's metrics file: its numbers, and every param and fact a reader needs to compare it with another run."""

import dataclasses

from dmlbench.identity import Run
from dmlbench.params.experiment import ExperimentParams
from dmlbench.params.load import plain

# Sections of params.yaml a run's numbers depend on, copied whole (defaults filled in) into its metrics file.
RUN_SECTIONS = ("prepare", "train", "embed", "evaluate")
# How tables name train.select (training/selection.py); best_test selects on the test set, as the seeds did.
SELECTION_LABELS = {"last": "last epoch", "best_val": "best val epoch",
                    "best_test": "best test epoch (seeds' protocol)"}
HELD_OUT_FACTS = ("val_classes", "val_fraction", "val_fraction_asked")  # training/selection.py, HeldOut.facts


def run_record(xp: ExperimentParams, run: Run, saved: dict, result: dict) -> dict:
    """The metrics file of ``run``: identity, how it was trained and embedded, all params, the results.

    ``saved`` is the embeddings file (it carries the model file's training facts); ``result`` is evaluate_splits'.
    """
    training, method, cfg = saved["training"], xp.method, xp.config
    facts = {**run.record(), "identity": plain(dict(run.identity)), "selection": training.get("select", "last"),
             "selected_epoch": training.get("selected_epoch", training["epochs"]), "pretrained": training["pretrained"],
             "precision": training["precision"], "embed_precision": saved["embedding"]["precision"],
             "epochs": training["epochs"], "warmup_epochs": training["warmup_epochs"],
             "frozen_epochs": training["frozen_epochs"], "image_sizes": method.image_sizes(cfg),
             "features": list(method.features),
             # best_val: the classes held out and the share they are (the minimum of two may exceed val_fraction)
             **{k: training[k] for k in HELD_OUT_FACTS if k in training}}
    return {"run": facts,
            "params": {"method": plain(dataclasses.asdict(cfg)),
                       **{k: plain(dataclasses.asdict(getattr(xp, k))) for k in RUN_SECTIONS}},
            "recall_ks": {"ks": list(xp.recall_ks), "source": xp.recall_ks_source}, **result,
            "provenance": saved.get("provenance")}


def epochs_label(run: dict) -> str:
    """"12 epochs", "1+12 epochs" (a separate warm-up) or "20 epochs (2 frozen)" (frozen backbone inside)."""
    main = run["epochs"] - run.get("warmup_epochs", 0)
    label = f"{run['warmup_epochs']}+{main}" if run.get("warmup_epochs") else str(run["epochs"])
    frozen = f" ({run['frozen_epochs']} frozen)" if run.get("frozen_epochs") else ""
    return f"{label} epochs{frozen}"


def source_label(run: dict) -> str:
    """What a reader needs to compare a row with another: recipe, weights, epochs, model selection."""
    weights = "ImageNet init" if run["pretrained"] else "from scratch"
    selection = SELECTION_LABELS.get(run["selection"], run["selection"])
    if run["selection"] != "last" and "selected_epoch" in run:
        selection += f" ({run['selected_epoch']})"
    return f"dmlbench, {run['recipe']} recipe, {weights}, {epochs_label(run)}, {selection}"
