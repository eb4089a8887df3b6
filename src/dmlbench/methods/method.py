"""The method contract: what the generic stages need of a method, built with keyword arguments.

Adding a method is one module in ``methods/`` that builds a ``Method``, plus one line in ``METHODS``. A method
states its section, model and loss; the rest defaults to the seeds' common recipe (``methods/defaults.py``).
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dmlbench.methods import defaults


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

    Each of the following has a default in ``methods/defaults.py`` (given after the colon):

    - ``build_optimizer(cfg, model) -> Optimization``: groups may have their own lr; warm-up or frozen epochs.
      Default: Adam with MultiStepLR at fractions of the epochs (``lr``, ``lr_milestones``, ``lr_gamma``).
    - ``batch_sampler(cfg, labels, seed) -> BatchSampler`` (``data/sampler.py``). Default: P x K batches
      (``classes_per_batch``, ``images_per_class``), else shuffled batches of ``batch_size``.
    - ``train_transform(cfg, normalization)``, ``test_transform(cfg, normalization)``: PIL -> tensor, with the
      backbone's input normalisation. Default: Resize((r, r)) -> RandomCrop + flip / CenterCrop if ``test_crop``.
    - ``image_sizes(cfg) -> {"train": int, "test": int, "resize": int}``: the sides the network sees in training
      and testing, and the largest side the transforms resize to (prepared images must be at least as large).
      Default: the crops and resizes of the default transforms.
    - ``describe(cfg) -> str``: the variant label of tables and run names (CGD's "SG"). Default: "512-d".
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
    build_optimizer: Callable[..., Any] = defaults.adam_multistep
    batch_sampler: Callable[..., Any] = defaults.batch_sampler
    train_transform: Callable[..., Any] = defaults.resize_crop_train
    test_transform: Callable[..., Any] = defaults.resize_crop_test
    image_sizes: Callable[..., dict] = defaults.resize_crop_sizes
    describe: Callable[..., str] = defaults.embedding_size
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
