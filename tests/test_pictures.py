"""Ranking pictures: frame colours and order on a handmade ranking, and the ranking helpers against evaluate."""

from pathlib import Path

import pytest
import torch
from PIL import Image

from dmlbench.errors import DmlbenchError
from dmlbench.reporting.pictures import (BLUE, GREEN, RED, THUMB, cell_box, draw_rows, plot_recall,
                                         prepared_image, split_rows)
from dmlbench.retrieval.ranking import average_precision_at_r, sample_queries, top_k, worst_queries
from dmlbench.retrieval.metrics import retrieval_metrics

# Four solid images (none the colour of a frame) and unit vectors at 0, 37, 53 and 90 degrees:
# query 0 ranks 1 (0.8), 2 (0.6), 3 (0.0); query 1 ranks 2 (0.96), 0 (0.8), 3 (0.6).
COLOURS = [(255, 255, 0), (0, 255, 255), (255, 0, 255), (20, 20, 20)]
VECTORS = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]])
LABELS = torch.tensor([0, 0, 1, 1])


@pytest.fixture
def handmade(tmp_path) -> tuple[dict, Path]:
    for i, colour in enumerate(COLOURS):
        Image.new("RGB", (20, 12), colour).save(tmp_path / f"{i}.png")  # lossless: colours stay exact
    splits = {"test": {"embeddings": VECTORS, "labels": LABELS, "paths": [f"{i}.png" for i in range(4)]}}
    return splits, tmp_path


def centre(box: tuple[int, int, int, int]) -> tuple[int, int]:
    return (box[0] + box[2]) // 2, (box[1] + box[3]) // 2


def test_rows_show_each_querys_ranking_framed_by_class(handmade, tmp_path):
    splits, prepared = handmade
    draw_rows(split_rows(splits, prepared, [0, 1], 3), "handmade", tmp_path / "rows.png")
    picture = Image.open(tmp_path / "rows.png").convert("RGB")
    expected = {0: [(1, GREEN), (2, RED), (3, RED)], 1: [(2, RED), (0, GREEN), (3, RED)]}
    for row, query in enumerate((0, 1)):
        assert picture.getpixel(cell_box(row, 0)[:2]) == BLUE
        assert picture.getpixel(centre(cell_box(row, 0))) == COLOURS[query]
        for column, (item, frame) in enumerate(expected[query], start=1):
            box = cell_box(row, column)
            assert picture.getpixel(box[:2]) == frame
            assert picture.getpixel((box[2] - 1, box[3] - 1)) == frame
            assert picture.getpixel(centre(box)) == COLOURS[item]
            # A 20 x 12 image fitted to THUMB wide leaves white bands above and below, inside the frame.
            assert picture.getpixel((centre(box)[0], box[1] + 5)) == (255, 255, 255)
    assert picture.width == cell_box(0, 3)[2] + 6 and THUMB == 96


def test_query_gallery_rows_search_the_gallery(handmade, tmp_path):
    splits, prepared = handmade
    qg = {"query": {"embeddings": VECTORS[:1], "labels": LABELS[:1], "paths": ["0.png"]},
          "gallery": {"embeddings": VECTORS[1:], "labels": LABELS[1:], "paths": ["1.png", "2.png", "3.png"]}}
    rows = split_rows(qg, prepared, [0], 3)
    assert [cell.image.name for cell in rows[0].results] == ["1.png", "2.png", "3.png"]
    assert [cell.frame for cell in rows[0].results] == [GREEN, RED, RED]
    assert [cell.caption for cell in rows[0].results] == ["0.8000 (0)", "0.6000 (1)", "0.0000 (1)"]


def test_top_k_breaks_ties_by_gallery_index_and_drops_the_query_by_index():
    gallery = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    values, index = top_k(gallery[:1], gallery, 3, torch.tensor([0]))
    assert index.tolist() == [[2, 3, 1]] and values.tolist() == [[1.0, 1.0, 0.0]]  # its duplicates stay
    assert top_k(gallery[:1], gallery, 3, torch.tensor([-1]))[1].tolist() == [[0, 2, 3]]
    with pytest.raises(DmlbenchError, match="top 4 asked, but each query can retrieve 3"):
        top_k(gallery[:1], gallery, 4, torch.tensor([0]))


def test_top_1_and_ap_agree_with_evaluates_metrics():
    # Two code paths rank the same vectors: multiples of 1/16 make every dot product exact in float32 (whatever
    # the kernel), so they rank alike on any CPU; random unit vectors can hold pairs within rounding of each other.
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(-16, 17, (60, 8), generator=gen) / 16
    labels = torch.randint(0, 6, (60,), generator=gen)
    labels[0] = 99  # a single-image class: no relevant item, no AP
    metrics = retrieval_metrics(x, labels, ks=(1,))
    _, first = top_k(x, x, 1, torch.arange(60))
    # Equal rankings: the same hits; a float32 mean of 60 hits against a float64 one (approx's 1e-6 relative).
    assert (labels[first[:, 0]] == labels).float().mean().item() == pytest.approx(metrics["recall@1"])
    ap = average_precision_at_r(x, labels)
    assert ap[0].isnan() and ap[1:].isfinite().all()
    assert ap.nanmean().item() == pytest.approx(metrics["map@r"], abs=1e-12)  # both float64 means of the same APs
    gallery, gallery_labels = torch.randint(-16, 17, (30, 8), generator=gen) / 16, torch.randint(0, 6, (30,),
                                                                                                  generator=gen)
    qg = retrieval_metrics(x, labels, gallery, gallery_labels, ks=(1,))
    # exact dot products again (multiples of 1/16): the same rankings; both float64 means of the same APs
    assert average_precision_at_r(x, labels, gallery, gallery_labels).nanmean().item() == pytest.approx(
        qg["map@r"], abs=1e-12)


def test_ap_at_r_by_hand():
    """Unit vectors at 0, 10, 25, 45 and 180 degrees, classes 0 0 1 0 1. Query 0 ranks 1 (rel), 2, 3 (rel):
    R = 2, only rank 1 inside the top 2, AP@R = (1/1) / 2. Query 3 ranks 2, 1 (rel), 0 (rel): (1/2) / 2.
    Queries 2 and 4 (R = 1) have a wrong nearest neighbour: 0."""
    angles = torch.tensor([0.0, 10.0, 25.0, 45.0, 180.0], dtype=torch.float64).deg2rad()
    x = torch.stack([angles.cos(), angles.sin()], dim=1)
    ap = average_precision_at_r(x, torch.tensor([0, 0, 1, 0, 1]))
    assert ap.tolist() == pytest.approx([0.5, 0.5, 0.0, 0.25, 0.0], abs=1e-12)  # sums of a few exact ratios


def test_worst_queries_are_the_lowest_ap_and_skip_queries_without_relevant_items():
    ap = torch.tensor([0.5, float("nan"), 0.1, 0.5, 0.1, 0.9], dtype=torch.float64)
    assert worst_queries(ap, 4) == [2, 4, 0, 3]
    assert sample_queries(100, 5, 0) == sample_queries(100, 5, 0)
    assert len(set(sample_queries(100, 5, 0))) == 5 and sample_queries(3, 5, 0) == [0, 1, 2]


def test_paths_leaving_the_prepared_folder_and_unreadable_images_are_refused(handmade, tmp_path):
    splits, prepared = handmade
    for bad in ("../x.png", "/etc/passwd"):
        with pytest.raises(DmlbenchError, match="in the embeddings"):
            prepared_image(prepared, bad)
    (prepared / "0.png").write_bytes(b"\x89PNG truncated")
    with pytest.raises(DmlbenchError, match=r"cannot read image .*0.png \(UnidentifiedImageError\)"):
        draw_rows(split_rows(splits, prepared, [1], 2), "t", tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_recall_curve_png(tmp_path):
    plot_recall([1, 2, 4, 8], {"dense": [0.5, 0.6, 0.7, 0.8], "binary": [0.4, 0.5, 0.6, 0.7]}, tmp_path / "r.png",
                "run")
    first = (tmp_path / "r.png").read_bytes()
    assert Image.open(tmp_path / "r.png").size == (500, 350)
    plot_recall([1, 2, 4, 8], {"dense": [0.5, 0.6, 0.7, 0.8], "binary": [0.4, 0.5, 0.6, 0.7]}, tmp_path / "r.png",
                "run")
    assert (tmp_path / "r.png").read_bytes() == first  # byte-stable: a rerun changes no dvc.lock hash
