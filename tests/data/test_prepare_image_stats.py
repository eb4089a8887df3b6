"""prepare's image_stats.json: per-channel mean/std of every pixel of the training images, as ToTensor reads them."""

import json

import numpy as np
import pytest
from PIL import Image

from dmlbench.data.prepare import IMAGE_STATS, image_stats


def write_png(path, pixels):
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(path)  # PNG: lossless, the values stay exact
    return path


@pytest.mark.parametrize("workers", [0, 2])
def test_every_pixel_weighs_the_same(tmp_path, workers):
    # A 1x2 image (red 255, 0) and a 2x2 one (red 51 everywhere): red over the 6 pixels is (255 + 0 + 4 x 51) / 6.
    small = write_png(tmp_path / "a.png", [[[255, 0, 10], [0, 0, 10]]])
    large = write_png(tmp_path / "b.png", [[[51, 255, 10]] * 2] * 2)
    stats = image_stats([small, large], workers)
    red = np.array([255, 0, 51, 51, 51, 51]) / 255
    green = np.array([0, 0, 255, 255, 255, 255]) / 255
    # image_stats sums in float64 and stores 6 decimals: rounding of at most 5e-7.
    assert stats["mean"] == pytest.approx([red.mean(), green.mean(), 10 / 255], abs=1e-6)
    assert stats["std"] == pytest.approx([red.std(), green.std(), 0.0], abs=1e-6)
    assert stats["images"] == 2 and stats["pixels"] == 6


def test_prepare_stage_writes_the_training_images_stats(tmp_path, monkeypatch):
    import stages.prepare as stage_prepare  # noqa: F401  (the stage script is importable from the repo root)
    from dmlbench.pipeline import prepare as prepare_folder
    from dmlbench.data.prepare import prepare_dataset
    from dmlbench.data.readers import read_dataset
    from dmlbench.data.synthetic import write_synthetic

    write_synthetic(tmp_path / "raw", num_classes=4, images_per_class=2, image_size=32, seed=0)
    prepare_dataset(read_dataset("synthetic", tmp_path / "raw"), tmp_path / "raw", tmp_path / "prepared", False, 32)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(stage_prepare, "prepared_dir", lambda dataset, crop: tmp_path / "prepared")
    monkeypatch.setattr(prepare_folder, "SYNTHETIC_RAW", tmp_path / "raw")
    params = {"dataset": "synthetic", "crop": "uncropped", "method": "cgd", "backbone": "resnet18", "seed": 0,
              "recipe": "demo", "data": {"root": "raw"},
              "prepare": {"max_side": 32, "workers": 0, "check_counts": True, "skip_corrupt": False,
                          "jpeg_quality": 95}}
    monkeypatch.setattr(stage_prepare, "load_params", lambda: params)
    stage_prepare.main()
    written = json.loads((tmp_path / "prepared" / IMAGE_STATS).read_text())
    rows = (tmp_path / "prepared" / "train.csv").read_text().splitlines()[1:]
    expected = image_stats([tmp_path / "prepared" / row.rsplit(",", 1)[0] for row in rows])
    assert written == expected and written["images"] == 4
