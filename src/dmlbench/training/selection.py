"""Which epoch's weights a run keeps (``train.select``), by which score (``train.select_metric``).

- ``last``: the last epoch's; nothing is evaluated during training.
- ``best_val``: a seeded share of the *training classes* is held out (never trained on); after every epoch (and once
  before the first) MAP@R (or Recall@1) on those classes is measured, the other breaking ties, and the best epoch's
  weights are kept. The test set is never looked at, so the numbers stay honest.
- ``best_test``: the same on the test split (query -> gallery where there is one). This is the seeds' protocol; it
  selects on the test set, so its numbers are optimistic, and every table says so.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch

from dmlbench.data.image_dataset import ManifestDataset, class_list
from dmlbench.data.manifest import eval_splits, read_manifest
from dmlbench.errors import DmlbenchError
from dmlbench.retrieval.embedding import embed_images
from dmlbench.retrieval.metrics import retrieval_metrics
from dmlbench.training.checkpoint import rng_state, set_rng_state

# A held-out set must be able to tell epochs apart. With C classes a random embedding already scores about 1/C
# (Recall@1 and MAP@R), so under 5 classes (chance >= 20 %) a barely trained network reaches the ceiling; with N
# images one query moves Recall@1 by 1/N, so under 50 images one image moves the score by more than 2 points,
# coarser than the epoch-to-epoch gains selection must resolve. Both are judgements, stated in docs/params.md.
MIN_VAL_CLASSES = 5
MIN_VAL_IMAGES = 50
MIN_TRAIN_CLASSES = 2
SHOWN_CLASSES = 20  # the printed line lists at most this many held-out classes (the model file keeps them all)


@dataclass(frozen=True)
class HeldOut:
    """The training classes best_val holds out: which, of how many, and the train.val_fraction asked for."""

    classes: tuple[int, ...]
    total: int
    asked: float

    @property
    def fraction(self) -> float:
        """The share actually held out: round(asked x total) / total."""
        return round(len(self.classes) / self.total, 6)

    def facts(self) -> dict:
        """What the model file (and from it the metrics file) records of the hold-out."""
        return {"val_classes": list(self.classes), "val_fraction": self.fraction, "val_fraction_asked": self.asked}

    def summary(self) -> str:
        """The line train prints: how many classes of how many, the share, which."""
        held = len(self.classes)
        shown = ", ".join(map(str, self.classes[:SHOWN_CLASSES]))
        more = f" and {held - SHOWN_CLASSES} more (all in the model file)" if held > SHOWN_CLASSES else ""
        return (f"train: best_val holds out {held} of the {self.total} training classes "
                f"({100 * self.fraction:.0f} %; train.val_fraction {self.asked}), never trained on: "
                f"classes {shown}{more}")


def held_out_classes(classes: list[int], fraction: float, seed: int) -> HeldOut:
    """round(fraction x classes) whole classes drawn with ``seed``; refused (one line) where they are fewer than
    MIN_VAL_CLASSES or leave fewer than MIN_TRAIN_CLASSES to train on."""
    total = len(classes)
    held = round(fraction * total)
    if total - held < MIN_TRAIN_CLASSES:
        raise DmlbenchError(f"train.val_fraction {fraction} holds out {held} of the {total} training classes, "
                            f"leaving fewer than {MIN_TRAIN_CLASSES} to train on: lower train.val_fraction (to at "
                            f"most {(total - MIN_TRAIN_CLASSES) / total:.2f} here) or use train.select: last")
    if held < MIN_VAL_CLASSES:
        fix = (f"raise train.val_fraction to at least {math.ceil(100 * MIN_VAL_CLASSES / total) / 100}"
               if total - MIN_VAL_CLASSES >= MIN_TRAIN_CLASSES else "use a dataset with more training classes")
        raise DmlbenchError(f"train.select best_val: train.val_fraction {fraction} holds out {held} of the {total} "
                            f"training classes, too few to tell epochs apart (at least {MIN_VAL_CLASSES}: with fewer "
                            f"a random embedding scores 1/classes and the score saturates): {fix}, or use "
                            f"train.select: last")
    chosen = np.random.default_rng(seed).choice(sorted(classes), size=held, replace=False)
    return HeldOut(tuple(sorted(int(c) for c in chosen)), total, fraction)


def check_held_out_images(count: int, held: HeldOut) -> None:
    """Refuse (one line) a held-out set of fewer than MIN_VAL_IMAGES images: one image would move the score by more
    than 2 points."""
    if count < MIN_VAL_IMAGES:
        raise DmlbenchError(f"train.select best_val: the {len(held.classes)} held-out classes hold {count} images, "
                            f"too few to tell epochs apart (at least {MIN_VAL_IMAGES}: one image moves Recall@1 by "
                            f"1/{count}): raise train.val_fraction, or use train.select: last")


def split_validation(rows: list[tuple[str, int]], fraction: float, seed: int
                     ) -> tuple[list[tuple[str, int]], list[tuple[str, int]], HeldOut]:
    """(training rows, held-out rows, which classes): whole classes held out by ``held_out_classes``."""
    held = held_out_classes(sorted({label for _, label in rows}), fraction, seed)
    val = set(held.classes)
    held_rows = [r for r in rows if r[1] in val]
    check_held_out_images(len(held_rows), held)
    return [r for r in rows if r[1] not in val], held_rows, held


def selection_rows(select: str, rows: list, fraction: float, seed: int, prepared
                   ) -> tuple[list, dict | None, HeldOut | None]:
    """(rows to train on, {split: rows} to select on or None for ``last``, the held-out classes for best_val)."""
    if select == "last":
        return rows, None, None
    if select == "best_val":
        train, val, held = split_validation(rows, fraction, seed)
        return train, {"test": val}, held
    return rows, {split: read_manifest(prepared / f"{split}.csv") for split in eval_splits(prepared)}, None


class Selector:
    """Scores the model on the selection images after each epoch and keeps the best epoch's weights (on the CPU)."""

    def __init__(self, select: str, splits: dict[str, list], prepared, transform, batch_size: int,
                 device: torch.device, precision: str, channels_last: bool, held_out: HeldOut | None = None,
                 metric: str = "map@r"):
        self.select, self.device, self.precision, self.channels_last = select, device, precision, channels_last
        self.held_out, self.metric = held_out, metric
        self.batch_size = batch_size
        self.datasets = {s: ManifestDataset(prepared, rows, transform, class_list(rows)) for s, rows in splits.items()}
        self.labels = {s: torch.tensor([label for _, label in rows]) for s, rows in splits.items()}
        self.classes = len({label for rows in splits.values() for _, label in rows})
        self.best: dict | None = None  # {"epoch", "recall@1", "map@r"}
        self.weights: dict | None = None
        self.scores: list[dict] = []  # one per epoch observed, epoch 0 = before training

    @property
    def prefix(self) -> str:
        """The log prefix of the scores: val/ (held-out classes) or test/ (the seeds' protocol)."""
        return "val" if self.select == "best_val" else "test"

    def prefixed(self, scores: dict) -> dict:
        """``scores`` named as they are logged and printed: val/map@r (held-out classes) or test/map@r."""
        return {f"{self.prefix}/{name}": value for name, value in scores.items()}

    def score(self, model: torch.nn.Module) -> dict:
        """Recall@1 and MAP@R of ``model`` on the selection images; the global RNGs are left as they were."""
        state = rng_state()  # evaluation must not shift the training's random stream (resume stays exact)
        try:
            embedded = {s: embed_images(model, d, self.batch_size, 0, self.device, self.precision,
                                        self.channels_last, split=f"{self.prefix} selection")
                        for s, d in self.datasets.items()}
        finally:
            set_rng_state(state)
            model.train()
        if "test" in embedded:
            values = retrieval_metrics(embedded["test"], self.labels["test"], ks=(1,))
        else:
            values = retrieval_metrics(embedded["query"], self.labels["query"], embedded["gallery"],
                                       self.labels["gallery"], ks=(1,))
        return {"recall@1": round(values["recall@1"], 6), "map@r": round(values["map@r"], 6)}

    def observe(self, model: torch.nn.Module, epoch: int) -> dict:
        """Score ``model`` after ``epoch`` (0: before training); keep its weights if it is the best so far."""
        scores = self.score(model)
        self.scores.append({"epoch": epoch, **scores})
        if self.best is None or self.rank_key(scores) > self.rank_key(self.best):  # ties keep the earlier epoch
            self.best = {"epoch": epoch, **scores}
            self.weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        return scores

    def rank_key(self, scores: dict) -> tuple[float, float]:
        """(the selection metric, the other one): the other breaks ties."""
        other = "recall@1" if self.metric == "map@r" else "map@r"
        return scores[self.metric], scores[other]

    def keep_best(self, model: torch.nn.Module) -> None:
        """Load the best epoch's weights into ``model``."""
        model.load_state_dict(self.weights)

    def facts(self) -> dict:
        """What the model file records of the selection: the epoch kept, its scores, every epoch's."""
        return {"select": self.select, "select_metric": self.metric, "selected_epoch": self.best["epoch"],
                "selected_scores": {k: v for k, v in self.best.items() if k != "epoch"},
                "selection_classes": self.classes, "selection_scores": self.scores,
                **(self.held_out.facts() if self.held_out is not None else {})}

    def state_dict(self) -> dict:
        return {"best": self.best, "weights": self.weights, "scores": self.scores}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.weights, self.scores = state["best"], state["weights"], state["scores"]
