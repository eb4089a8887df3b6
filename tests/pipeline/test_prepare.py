"""pipeline/prepare.py: the crop values come from params' CROPS, and `cropped` cuts each image to its box."""

from PIL import Image

from dmlbench.data.manifest import read_manifest
from dmlbench.data.synthetic import write_synthetic
from dmlbench.params.experiment import CROPS
from dmlbench.params.load import build
from dmlbench.params.sections import PrepareConfig
from dmlbench.pipeline.prepare import CROPPED, UNCROPPED, prepare_folder


def test_cropped_cuts_each_image_to_its_box_and_uncropped_keeps_it_whole(tmp_path):
    assert (UNCROPPED, CROPPED) == CROPS == ("uncropped", "cropped")
    write_synthetic(tmp_path / "raw", 2, 2, 48, 0)  # 48 px images, each object 30-70 % of the side
    cfg = build(PrepareConfig, {"max_side": None, "workers": 0}, "prepare")
    sizes = {}
    for crop in CROPS:
        out = tmp_path / crop
        prepare_folder("synthetic", crop, tmp_path / "raw", out, cfg)
        rows = read_manifest(out / "train.csv") + read_manifest(out / "test.csv")
        sizes[crop] = [Image.open(out / path).size for path, _ in rows]
    assert set(sizes[UNCROPPED]) == {(48, 48)}
    assert len(sizes[CROPPED]) == len(sizes[UNCROPPED]) and all(max(s) < 48 for s in sizes[CROPPED])
