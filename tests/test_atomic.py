import pytest
import torch

from dmlbench import atomic


def test_save_torch_gives_the_same_bytes_under_any_name(tmp_path):
    state = {"w": torch.arange(6.0).reshape(2, 3), "classes": [1, 2]}
    atomic.save_torch(tmp_path / "a.pt", state)
    atomic.save_torch(tmp_path / "sub/b.pt", state)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "sub/b.pt").read_bytes()
    assert torch.equal(torch.load(tmp_path / "a.pt", weights_only=True)["w"], state["w"])


def test_failed_write_keeps_the_previous_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "metrics.json"
    atomic.write_json(target, {"recall@1": 0.5})
    with pytest.raises(TypeError):
        atomic.write_json(target, {"bad": object()})
    assert target.read_text() == '{\n  "recall@1": 0.5\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
