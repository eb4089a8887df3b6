"""The method contract: what the generic stages need of a method, built with keyword arguments.

Adding a method is one module in ``methods/`` that builds a ``Method``, plus one line in ``METHODS``.
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


@dataclass(frozen=True, kw_only=True)
class Method:
    """One method: its params section's dataclass and the builders the train/embed/evaluate stages call.

    - ``config_cls``: the dataclass of its params.yaml section; it has ``epochs`` (the main phase's) and checks
      every value in ``__post_init__``. A ``per_dataset:`` mapping in the section overrides fields per dataset.
    - ``build_model(cfg, backbone, num_classes, pretrained, seed) -> nn.Module``: ``forward(images)`` returns a
      tuple whose first element is the (B, D) embedding; every trained state, a loss's proxies included, lives
      in the model, so the optimizer, checkpoint, resume, model file and device moves all see it. ``seed`` is the
      run's, for builders that draw anything.
    - ``loss(cfg, outputs, labels) -> {"loss": total, term: value, ...}``: every term is logged.
    - ``correct(cfg, outputs, labels) -> tensor``: correct predictions in the batch, for the training accuracy
      curve; None when the method has no classifier whose accuracy means something.
    - ``build_optimizer(cfg, model) -> Optimization``: groups may have their own lr; warm-up or frozen epochs.
    - ``batch_sampler(cfg, labels, seed) -> BatchSampler`` (``data/sampler.py``).
    - ``train_transform(cfg, normalization)``, ``test_transform(cfg, normalization)``: PIL -> tensor, with the
      backbone's input normalisation.
    - ``image_sizes(cfg) -> {"train": int, "test": int, "resize": int}``: the sides the network sees in training
      and testing, and the largest side the transforms resize to (prepared images must be at least as large).
    - ``describe(cfg) -> str``: the variant label of tables and run names (CGD's "SG").
    - ``features``: what evaluate ranks: "dense" (cosine) and/or "binary" (Hamming on the signs).
    - ``normalization(cfg, backbone_normalization, source) -> Normalization`` (optional): the input
      normalisation the transforms get instead of the backbone's (LREC: the dataset's mean/std). ``source`` is
      the prepared folder (train, embed) or the ``Normalization`` a trained run recorded in its model file
      (``dmlbench query`` and ``export``, which rebuild a run from that file alone).
    """

    name: str
    config_cls: type
    build_model: Callable[..., Any]
    loss: Callable[..., dict]
    build_optimizer: Callable[..., Any]
    batch_sampler: Callable[..., Any]
    train_transform: Callable[..., Any]
    test_transform: Callable[..., Any]
    image_sizes: Callable[..., dict]
    describe: Callable[..., str]
    correct: Callable[..., Any] | None = None
    features: tuple[str, ...] = ("dense",)
    normalization: Callable[..., Any] | None = None


def input_normalization(method: Method, cfg, backbone: str, source):
    """The normalisation a run's transforms use: the backbone's, unless the method picks its own (LREC's dataset
    mean/std, from ``source``: the prepared folder, or a normalisation the run recorded)."""
    from dmlbench.models.backbones import backbone_entry

    norm = backbone_entry(backbone).normalization
    return method.normalization(cfg, norm, source) if method.normalization is not None else norm


def normalization_record(norm) -> dict:
    """The model file's record of a normalisation (plain lists and numbers)."""
    return {"mean": list(norm.mean), "std": list(norm.std), "scale": norm.scale, "bgr": norm.bgr}


def recorded_normalization(method: Method, cfg, backbone: str, facts: dict, source: Path):
    """The normalisation a trained run used, from the training facts of its model file ``source`` (a record
    read as untrusted): what a query or an export must feed the network to get the run's embeddings."""
    from dmlbench.errors import DmlbenchError
    from dmlbench.models.backbones import Normalization, backbone_entry

    record = facts.get("normalization") if isinstance(facts, dict) else None
    if record is None and method.normalization is None:  # a file from before the record: the backbone's
        return backbone_entry(backbone).normalization
    try:
        norm = Normalization(tuple(float(v) for v in record["mean"]), tuple(float(v) for v in record["std"]),
                             float(record["scale"]), record["bgr"])
        numbers = (*norm.mean, *norm.std, norm.scale)
        valid = (len(norm.mean) == len(norm.std) == 3 and isinstance(norm.bgr, bool)
                 and all(math.isfinite(v) for v in numbers) and min(*norm.std, norm.scale) > 0)
    except (KeyError, TypeError, ValueError):
        valid = False
    if not valid:
        raise DmlbenchError(f"model file {source} records no valid input normalisation (written before it was "
                            f"recorded, or damaged): rerun dvc repro train for that run")
    return norm if method.normalization is None else input_normalization(method, cfg, backbone, norm)
