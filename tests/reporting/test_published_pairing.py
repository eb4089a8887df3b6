"""The UnifiedProxy seed's published tables stand beside dmlbench's proxy_anchor cells (the loss they were most
likely trained with, as the published file states with its evidence); balanced_proxy cells have no neighbour."""

import dataclasses
from pathlib import Path

from dmlbench.methods import METHODS
from dmlbench.methods.unifiedproxy import UnifiedProxyConfig
from dmlbench.reporting.overview import overview_points
from dmlbench.reporting.tables import load_published, recall_table, render_tables

PUBLISHED_DIR = Path(__file__).parents[2] / "benchmarks" / "published"
BALANCED, ANCHOR = "balanced_proxy.dmlbench", "proxy_anchor"
SEED = {"source": "UnifiedProxy seed", "method": "unifiedproxy", "compare_with": ANCHOR,
        "note": "most likely proxy-anchor: the ancestor's tables,\n  number for number.",
        "recall": {"car": {"uncropped": {"resnet50": {"variant": "proxy_anchor (most likely)",
                                                      "values": [88.5, 93.1, 95.8, 97.7]}}}}}
CGD = {"source": "CGD seed", "method": "cgd",
       "recall": {"car": {"uncropped": {"resnet50": {"variant": "SG", "values": [86.4, 92.1, 95.6, 97.5]}}}}}


def run(variant, r1, method="unifiedproxy", digest="0000aaaa"):
    facts = {"method": method, "backbone": "resnet50", "dataset": "car", "crop": "uncropped", "variant": variant,
             "recipe": "seed", "seed": 0, "digest": digest, "pretrained": True, "epochs": 20, "warmup_epochs": 0,
             "frozen_epochs": 2, "selection": "last"}
    facts["name"] = "-".join(str(facts[k]) for k in ("method", "variant", "backbone", "dataset", "crop", "seed",
                                                      "digest"))
    return {"run": facts, "metrics": {"recall@1": r1, "recall@2": 0.9, "recall@4": 0.95, "recall@8": 0.97,
                                      "map@r": 0.3, "r_precision": 0.4}}


def rows(table: str) -> list[tuple[str, str, str]]:
    """(variant, source, R@1) of every body row."""
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in table.splitlines()[2:]]
    return [(c[2], c[5].split(",")[0] + (", published" if "published" in c[5] else ""), c[7]) for c in cells]


def test_the_published_row_follows_the_proxy_anchor_row_and_balanced_proxy_stands_alone():
    # Either order of the runs: balanced_proxy first, then proxy_anchor with the seed's row right after it.
    for runs in ([run(BALANCED, 0.80, digest="1111bbbb"), run(ANCHOR, 0.85)],
                 [run(ANCHOR, 0.85), run(BALANCED, 0.80, digest="1111bbbb")]):
        assert rows(recall_table("car", runs, [SEED])) == [
            (BALANCED, "dmlbench", "80.0"),
            (ANCHOR, "dmlbench", "85.0"),
            ("proxy_anchor (most likely)", "UnifiedProxy seed, published", "88.5")]


def test_an_unrun_proxy_anchor_cell_still_holds_the_published_rows_place():
    assert rows(recall_table("car", [run(BALANCED, 0.80)], [SEED])) == [
        (BALANCED, "dmlbench", "80.0"),
        (ANCHOR, "dmlbench (not run)", "—"),
        ("proxy_anchor (most likely)", "UnifiedProxy seed, published", "88.5")]


def test_seeds_without_a_pairing_keep_their_rows_after_every_configuration():
    runs = [run("MG", 0.70, "cgd", "1111bbbb"), run("SG", 0.75, "cgd")]
    assert [r[0] for r in rows(recall_table("car", runs, [CGD]))] == ["MG", "SG", "SG"]


def test_the_note_with_its_evidence_follows_the_table_of_a_dataset_it_has_numbers_for():
    block = render_tables([run(ANCHOR, 0.85)], [], [SEED, CGD], datasets=("car", "cub"))
    car, cub = block.split("#### CUB200-2011")
    assert "\n\nUnifiedProxy seed: most likely proxy-anchor: the ancestor's tables, number for number.\n" in car
    assert "UnifiedProxy seed:" not in cub  # no published UnifiedProxy numbers for CUB in this fixture


def test_the_overview_pairs_the_seeds_r1_with_proxy_anchor_alone():
    runs = [run(BALANCED, 0.80), run(ANCHOR, 0.85), run("SG", 0.75, "cgd")]
    points = {(p["method"], p["variant"]): (p["ours"], p["theirs"]) for p in overview_points(runs, [SEED, CGD])}
    assert points == {("cgd", None): (75.0, 86.4), ("unifiedproxy", ANCHOR): (85.0, 88.5),
                      ("unifiedproxy", BALANCED): (80.0, None)}


def test_the_published_file_pairs_its_rows_with_our_proxy_anchor_label_and_states_the_evidence():
    seed = next(s for s in load_published(PUBLISHED_DIR) if s["method"] == "unifiedproxy")
    cfg = UnifiedProxyConfig(loss="proxy_anchor", feature_dim=512, alpha=32.0, delta=0.1, freeze_bn=True,
                             batch_size=64, lr=1e-4, proxy_lr=1e-2, epochs=20, frozen_epochs=2, lr_step=5,
                             lr_gamma=0.5, train_crop=224, test_resize=256, test_crop=224)
    assert seed["compare_with"] == METHODS["unifiedproxy"].describe(cfg) == ANCHOR  # the label our runs carry
    assert METHODS["unifiedproxy"].describe(dataclasses.replace(cfg, loss="balanced_proxy")) == BALANCED
    cells = [cell for crops in seed["recall"].values() for cells in crops.values() for cell in cells.values()]
    assert len(cells) == 6 and {c["variant"] for c in cells} == {"proxy_anchor (most likely)"}
    note = " ".join(seed["note"].split())
    assert "leftthomas/ProxyAnchor" in note and "only loss is proxy-anchor" in note and "download codes" in note
