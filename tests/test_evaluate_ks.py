"""evaluate.recall_ks: null keeps the dataset's K list, a list overrides it."""

import pytest

from dmlbench.data.protocol import recall_ks
from dmlbench.errors import DmlbenchError
from dmlbench.params.load import build
from dmlbench.params.sections import EvaluateConfig, PrepareConfig


def test_recall_ks_null_list_and_bad_values():
    assert build(EvaluateConfig, {"chunk_size": 8}, "evaluate").recall_ks is None
    assert build(EvaluateConfig, {"chunk_size": 8, "recall_ks": None}, "evaluate").recall_ks is None
    assert build(EvaluateConfig, {"chunk_size": 8, "recall_ks": [1, 2]}, "evaluate").recall_ks == (1, 2)
    for bad in ([], [0, 1]):
        with pytest.raises(DmlbenchError, match="evaluate.recall_ks must be null or a non-empty list"):
            build(EvaluateConfig, {"chunk_size": 8, "recall_ks": bad}, "evaluate")


def test_prepare_flags_default_to_strict():
    cfg = build(PrepareConfig, {"max_side": None, "workers": 0}, "prepare")
    assert cfg.check_counts is True and cfg.skip_corrupt is False
    with pytest.raises(DmlbenchError, match="prepare.skip_corrupt must be bool"):
        build(PrepareConfig, {"max_side": None, "workers": 0, "skip_corrupt": "yes"}, "prepare")


def test_every_dataset_has_a_k_list():
    assert recall_ks("car") == recall_ks("folder") == (1, 2, 4, 8)
    assert recall_ks("sop") == (1, 10, 100, 1000) and recall_ks("isc") == (1, 10, 20, 30, 40, 50)
