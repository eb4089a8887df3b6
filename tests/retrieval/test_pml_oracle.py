"""pytorch-metric-learning's AccuracyCalculator as a test-only oracle, compared only where it computes the
same thing as dmlbench.

Where the definitions agree: MAP@R and R-Precision (Musgrave et al.; R = the query's relevant items in the
gallery, the query itself not counted in self-retrieval) over the queries that have at least one relevant
item, and the self-match removed by index. Where they differ, and how the comparison copes:
- Queries without a relevant item: dmlbench counts them as misses for Recall@K, AccuracyCalculator leaves
  them out of precision_at_1 too, so its precision_at_1 = recall@1 x queries / (queries - those without).
  (Both leave them out of MAP@R and R-Precision.)
- Ties: dmlbench breaks them by gallery index; AccuracyCalculator's top-k leaves their order unspecified, so
  the data here are continuous random vectors, which have no ties.
- AccuracyCalculator L2-normalises the embeddings itself (CosineSimilarity); dmlbench takes them as given,
  so the embeddings are normalised first.
"""

import pytest
import torch

from dmlbench.retrieval.metrics import queries_without_relevant, retrieval_metrics
from retrieval_reference import closest_call

pytest.importorskip("pytorch_metric_learning", reason="the oracle is optional (pip install "
                    "pytorch-metric-learning)")
from pytorch_metric_learning.distances import CosineSimilarity  # noqa: E402
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator  # noqa: E402
from pytorch_metric_learning.utils.inference import CustomKNN  # noqa: E402


def oracle(query, query_labels, gallery=None, gallery_labels=None) -> dict:
    """AccuracyCalculator's numbers, exact k-NN in torch (no faiss), k = the largest class (what MAP@R needs)."""
    calculator = AccuracyCalculator(include=("precision_at_1", "mean_average_precision_at_r", "r_precision"),
                                    k="max_bin_count", device=torch.device("cpu"),
                                    knn_func=CustomKNN(CosineSimilarity()))
    return calculator.get_accuracy(query, query_labels, gallery, gallery_labels)


def data(seed, n, dim, classes):
    gen = torch.Generator().manual_seed(seed)
    emb = torch.nn.functional.normalize(torch.randn(n, dim, generator=gen), dim=1)
    return emb, torch.randint(0, classes, (n,), generator=gen)


# Both sides compute float32 cosines of 8-d unit vectors, by different kernels (and the oracle normalises them
# again): each dot product rounds by at most 8 x 2^-24 = 4.8e-7 in any summation order, with or without FMA, and
# the renormalisation moves it by ~2.4e-7 more, so the two can disagree by ~1.2e-6. Where a relevant and an
# irrelevant item lie closer than that, their order (and a metric) depends on the CPU; the seeds below leave every
# such pair at least 1.5e-6 apart (seed 0's query/gallery set had a pair 5e-8 apart), which the tests check first.
NO_NEAR_TIE = 1.5e-6
SEEDS = (1, 2, 3)


def assert_agree(ours: dict, theirs: dict, queries: int, without: int) -> None:
    # Identical rankings give identical counts; both sides divide them in float64, so 1e-9 is rounding's bound.
    assert ours["map@r"] == pytest.approx(theirs["mean_average_precision_at_r"], rel=0, abs=1e-9)
    assert ours["r_precision"] == pytest.approx(theirs["r_precision"], rel=0, abs=1e-9)
    assert ours["recall@1"] * queries / (queries - without) == pytest.approx(theirs["precision_at_1"], rel=0,
                                                                            abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_self_retrieval_agrees_with_the_oracle(seed):
    emb, labels = data(seed, 120, 8, 10)
    labels[:3] = torch.tensor([50, 51, 52])  # three single-image classes: no relevant item
    without = queries_without_relevant(labels)
    assert without >= 3 and closest_call(emb, labels) > NO_NEAR_TIE
    for chunk_size in (7, 1000):
        assert_agree(retrieval_metrics(emb, labels, ks=(1,), chunk_size=chunk_size), oracle(emb, labels), 120,
                     without)


@pytest.mark.parametrize("seed", SEEDS)
def test_query_gallery_retrieval_agrees_with_the_oracle(seed):
    query, query_labels = data(seed + 10, 40, 8, 6)
    gallery, gallery_labels = data(seed + 20, 90, 8, 6)
    query_labels[::5] = 77  # query ids the gallery lacks
    without = queries_without_relevant(query_labels, gallery_labels)
    assert without == 8 and closest_call(query, query_labels, gallery, gallery_labels) > NO_NEAR_TIE
    for chunk_size in (3, 1000):
        ours = retrieval_metrics(query, query_labels, gallery, gallery_labels, ks=(1,), chunk_size=chunk_size)
        assert_agree(ours, oracle(query, query_labels, gallery, gallery_labels), 40, without)
