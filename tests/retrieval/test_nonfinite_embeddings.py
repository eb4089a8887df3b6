"""A diverged model never scores well: NaN or inf embeddings are refused at embed, at evaluate, and by the
rank computation itself (where a NaN similarity used to rank as a perfect match)."""

import pytest
import torch
from torch import nn
from torchvision import transforms

from dmlbench.errors import DmlbenchError
from dmlbench.retrieval.embedding import embed_images, embed_prepared
from dmlbench.retrieval.metrics import retrieval_metrics
from dmlbench.retrieval.ranks import check_features, cross_ranks, self_ranks

NAN, INF = float("nan"), float("inf")


def data(n=20, dim=4, classes=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    emb = nn.functional.normalize(torch.randn(n, dim, generator=gen), dim=1)
    return emb, torch.arange(n) % classes


def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("similarity", ["cosine", "hamming"])
def test_all_nan_embeddings_are_refused_not_scored_perfect(similarity):
    emb, labels = data()
    emb[:] = NAN
    with pytest.raises(DmlbenchError) as excinfo:
        retrieval_metrics(emb, labels, ks=(1, 2), similarity=similarity)
    assert one_line(excinfo) == ("20 of 20 test embeddings are not finite (NaN or inf): the model diverged in "
                                 "training; lower the learning rate and rerun dvc repro train")


@pytest.mark.parametrize("bad", [NAN, INF, -INF])
def test_a_single_non_finite_coordinate_is_refused_and_counted_by_row(bad):
    emb, labels = data()
    emb[3, 1] = bad
    emb[7, :] = bad
    with pytest.raises(DmlbenchError, match=r"^2 of 20 test embeddings are not finite"):
        retrieval_metrics(emb, labels, ks=(1,), chunk_size=3)


def test_query_and_gallery_are_each_checked_and_named():
    emb, labels = data()
    query, gallery = emb[:5].clone(), emb.clone()
    gallery[[2, 9, 11]] = NAN
    with pytest.raises(DmlbenchError, match=r"^3 of 20 gallery embeddings are not finite .*lower the learning rate"):
        retrieval_metrics(query, labels[:5], gallery, labels, ks=(1,))
    query[0, 0] = INF
    with pytest.raises(DmlbenchError, match=r"^1 of 5 query embeddings are not finite"):
        retrieval_metrics(query, labels[:5], emb, labels, ks=(1,))


def test_the_rank_entry_points_refuse_non_finite_vectors_even_when_called_directly():
    emb, labels = data()
    for bad in (NAN, INF):
        x = emb.clone()
        x[4] = bad
        with pytest.raises(DmlbenchError, match=r"^1 of 20 item vectors hold NaN or inf"):
            self_ranks(x, labels, tile=20, max_k=2, max_class=20)
        # Refused at the call, not when the first chunk is drawn.
        with pytest.raises(DmlbenchError, match=r"^1 of 20 gallery vectors hold NaN or inf"):
            cross_ranks(emb[:3], labels[:3], x, labels, 4, 2, False)
        with pytest.raises(DmlbenchError, match=r"^1 of 20 query vectors hold NaN or inf"):
            cross_ranks(x, labels, x, labels, 4, 2, True)


def test_finite_vectors_whose_dot_products_would_overflow_are_refused():
    emb, labels = data(dim=4)
    huge = emb * 1e20  # finite, but 1e40 > float32's max: the products would be inf and inf - inf NaN
    assert not torch.isfinite(huge @ huge.T).all()
    with pytest.raises(DmlbenchError, match=r"^item vectors hold values up to [0-9.]+e\+19: .*pass L2-normalised"):
        self_ranks(huge, labels, tile=20, max_k=2, max_class=20)
    with pytest.raises(DmlbenchError, match=r"overflow float32"):
        retrieval_metrics(huge, labels, ks=(1,))
    check_features(emb * 1e18, "item")  # 4 x 1e36 stays below the bound: accepted
    check_features(torch.empty(0, 4), "item")


class Diverged(nn.Module):
    """Returns each image's mean colour, NaN for the images whose index in the batch is in `bad`."""

    def __init__(self, bad, value=NAN):
        super().__init__()
        self.bad, self.value, self.scale = bad, value, nn.Parameter(torch.ones(1))

    def forward(self, images):
        emb = images.mean(dim=(2, 3)) * self.scale
        emb[[i for i in self.bad if i < len(emb)]] = self.value
        return emb, None


def test_embed_images_refuses_non_finite_outputs():
    images = [(torch.rand(3, 8, 8), 0) for _ in range(10)]
    with pytest.raises(DmlbenchError) as excinfo:
        embed_images(Diverged([0], INF), images, 4, 0, torch.device("cpu"), split="query")
    # Batches of 4: the first image of each of the 3 batches.
    assert one_line(excinfo) == ("the model gave non-finite (NaN or inf) embeddings for 3 of 10 query images: its "
                                 "training diverged; lower the learning rate and rerun dvc repro train")
    ok = embed_images(Diverged([]), images, 4, 0, torch.device("cpu"))
    assert torch.isfinite(ok).all()


def test_embed_prepared_names_the_split(prepared):
    # The fixture's test split: 3 classes x 4 images. embed_prepared returns nothing when it refuses, so the
    # embed stage, which writes what it returns, writes nothing.
    transform = transforms.ToTensor()
    with pytest.raises(DmlbenchError, match=r"for 12 of 12 test images: its training diverged; lower the "
                                            r"learning rate"):
        embed_prepared(Diverged(range(64)), prepared, transform, 5, 0, torch.device("cpu"))
