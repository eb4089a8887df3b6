"""What evaluate_splits reports beside the metrics: sizes and the queries that have no relevant item."""

import json

import pytest
import torch

from dmlbench.errors import DmlbenchError
from dmlbench.retrieval.evaluation import evaluate_splits
from dmlbench.retrieval.metrics import retrieval_metrics


def split(labels, seed=0, dim=6):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.tensor(labels)
    return {"embeddings": torch.nn.functional.normalize(torch.randn(len(labels), dim, generator=gen), dim=1),
            "labels": labels}


def brute_force_without_relevant(query_labels, gallery_labels, self_mode):
    """Queries with no other item of their label: one loop per query, nothing clever."""
    q, g = query_labels.tolist(), gallery_labels.tolist()
    return sum(not any(g[j] == q[i] for j in range(len(g)) if not (self_mode and j == i)) for i in range(len(q)))


def test_self_retrieval_counts_single_image_classes_outside_the_metrics():
    test = split([0, 0, 1, 1, 1, 2, 3, 3, 4, 5])  # classes 2, 4 and 5 have a single image
    result = evaluate_splits({"test": test}, (1, 2), 4, features=("dense", "binary"))
    assert result["queries"] == 10 and result["gallery"] == 9
    assert result["queries_without_relevant"] == 3 == brute_force_without_relevant(test["labels"], test["labels"],
                                                                                   True)
    # Not inside "metrics" (what metrics/summary.json receives) nor inside a feature's metrics.
    assert set(result["metrics"]) == {"recall@1", "recall@2", "map@r", "r_precision", "binary"}
    assert set(result["metrics"]["binary"]) == {"recall@1", "recall@2", "map@r", "r_precision"}
    json.dumps(result)  # plain numbers: the record is written as JSON


def test_query_gallery_counts_query_ids_the_gallery_lacks():
    query, gallery = split([0, 1, 7, 2, 8, 8], seed=1), split([0, 0, 1, 1, 2, 2, 3], seed=2)
    result = evaluate_splits({"query": query, "gallery": gallery}, (1,), 2)
    assert (result["queries"], result["gallery"]) == (6, 7)
    assert result["queries_without_relevant"] == 3 == brute_force_without_relevant(query["labels"],
                                                                                   gallery["labels"], False)
    assert "queries_without_relevant" not in result["metrics"]


def test_every_query_has_a_relevant_item():
    result = evaluate_splits({"test": split([0, 0, 1, 1])}, (1,), 4)
    assert result["queries_without_relevant"] == 0


def test_a_single_class_test_split_is_refused():
    with pytest.raises(DmlbenchError, match=r"the test split has too few classes: found 1 class\(es\), need >= 2"):
        evaluate_splits({"test": split([3, 3, 3, 3])}, (1,), 4)


@pytest.mark.parametrize("splits", [{}, {"query": split([0, 1])}, {"train": split([0, 1])}])
def test_splits_of_another_layout_are_refused(splits):
    with pytest.raises(DmlbenchError, match=r"not test or query \+ gallery: rerun dvc repro embed"):
        evaluate_splits(splits, (1,), 4)


def test_intervals_sit_beside_the_metrics_nested_as_they_are():
    test = split([0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 4], seed=3)
    result = evaluate_splits({"test": test}, (1, 2), 4, features=("dense", "binary"))
    intervals = result["intervals"]
    assert {k: intervals[k] for k in ("level", "resamples", "seed", "unit", "method", "classes")} == {
        "level": 0.95, "resamples": 1000, "seed": 0, "unit": "class", "method": "percentile", "classes": 5}
    bounds = intervals["metrics"]
    assert set(bounds) == set(result["metrics"]) and set(bounds["binary"]) == set(result["metrics"]["binary"])
    for values, ranges in ((result["metrics"], bounds), (result["metrics"]["binary"], bounds["binary"])):
        for name, value in values.items():
            if name != "binary":
                low, high = ranges[name]
                assert 0 <= low <= high <= 1, name
    # The point metrics are what retrieval_metrics gives, rounded as before: the intervals change none of them.
    dense = retrieval_metrics(test["embeddings"], test["labels"], ks=(1, 2), chunk_size=4)
    assert {k: v for k, v in result["metrics"].items() if k != "binary"} == {k: round(v, 6) for k, v in dense.items()}
    assert evaluate_splits({"test": test}, (1, 2), 4, features=("dense", "binary")) == result  # seeded
    json.dumps(result)
