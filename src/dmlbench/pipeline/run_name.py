"""The run that params.yaml and the prepared data describe: its digest hashes validated, resolved values only."""

import dataclasses
from pathlib import Path

from dmlbench.data.prepare import read_data_digest
from dmlbench.identity import IDENTITY_PARAMS, Run, make_run
from dmlbench.models.precision import resolve_precision
from dmlbench.params.experiment import ExperimentParams
from dmlbench.training.distributed import SINGLE, device_for


def identity_values(xp: ExperimentParams, data_digest: str) -> dict:
    """IDENTITY_PARAMS as the run uses them (defaults filled in by validation; ``auto`` device and precision resolved
    on this machine, so a GPU's bf16 run never takes a CPU's fp32 name), plus the prepared data's digest."""
    device = device_for(SINGLE, xp.train.device)
    values = {"train.device": device.type,  # cuda:0 and cuda:1 run the same kernels
              "train.precision": resolve_precision(xp.train.precision, device, "train.precision"),
              # val_fraction shapes the weights only when best_val holds classes out
              "train.val_fraction": xp.train.val_fraction if xp.train.select == "best_val" else None}
    if xp.train.select != "last":  # only then does the metric pick weights; absent (not None) keeps older names
        values["train.select_metric"] = xp.train.select_metric
    sections = {"train": dataclasses.asdict(xp.train), "prepare": dataclasses.asdict(xp.prepare)}
    for key in IDENTITY_PARAMS:
        if key not in values and key != "train.select_metric":
            name, field = key.split(".")
            values[key] = sections[name][field]
    return {**values, "data": data_digest}


def run_of(xp: ExperimentParams, prepared: Path) -> Run:
    """The run of ``xp`` trained on the prepared folder ``prepared`` (its digest.json, written by prepare)."""
    return make_run(xp.experiment, xp.variant, xp.config, identity_values(xp, read_data_digest(prepared)))
