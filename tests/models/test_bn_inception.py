"""BN-Inception: the pretrainedmodels architecture as a trunk, its Caffe input convention, and its weights file."""

import urllib.error

import pytest
import torch

from dmlbench.errors import DmlbenchError
from dmlbench.models import bn_inception
from dmlbench.models.backbones import BACKBONES, Normalization, build_backbone, build_trunk


def test_trunk_is_the_features_graph_without_pooling_or_classifier():
    trunk = build_trunk("bn_inception", pretrained=False).eval()
    with torch.no_grad():
        assert trunk(torch.randn(1, 3, 224, 224)).shape == (1, 1024, 7, 7)
    names = [name for name, _ in trunk.named_parameters()]
    assert not any("last_linear" in n for n in names) and sum(p.numel() for p in trunk.parameters()) == 10_270_240


def test_its_weights_expect_bgr_0_to_255_minus_the_caffe_means():
    assert BACKBONES["bn_inception"].normalization == Normalization((104.0, 117.0, 128.0), (1.0, 1.0, 1.0),
                                                                    scale=255.0, bgr=True)


@pytest.fixture
def hub(tmp_path):
    """torch.hub's folder in tmp_path for one test (the weights file is looked up in <hub>/checkpoints/)."""
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path))
    yield tmp_path
    torch.hub.set_dir(previous)


def test_a_weights_file_in_the_hub_folder_is_loaded_with_unbatched_batchnorm_vectors(hub):
    torch.manual_seed(0)
    source = bn_inception.build_bn_inception().state_dict()
    # An older port stores BatchNorm vectors as (1, C): they must load as (C,).
    stored = {k: v.unsqueeze(0) if k.endswith("_bn.weight") or k.endswith("_bn.running_mean") else v
              for k, v in source.items()}
    (hub / "checkpoints").mkdir()
    torch.save(stored, hub / "checkpoints" / bn_inception.URL.rsplit("/", 1)[-1])
    loaded = build_backbone("bn_inception", pretrained=True).state_dict()
    assert loaded.keys() == source.keys() and all(torch.equal(loaded[k], source[k]) for k in source)


def test_missing_weights_stop_with_one_line_naming_the_file_and_the_folder(hub, monkeypatch):
    def offline(url, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)  # never download in a test
    with pytest.raises(DmlbenchError) as error:
        build_trunk("bn_inception", pretrained=True)
    message = str(error.value)
    assert "\n" not in message and "bn_inception-52deb4733.pth" in message and f"{hub}/checkpoints/" in message
    assert "URLError" in message and "train.pretrained: false" in message
