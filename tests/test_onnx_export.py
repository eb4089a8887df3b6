"""ONNX export of a tiny untrained run: onnxruntime against PyTorch (cosine, Recall@1), dynamic batch, the
external-data format, a failed check that replaces nothing, and `dmlbench query --onnx`."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

pytest.importorskip("onnxruntime")

from dmlbench.cli import main  # noqa: E402
from dmlbench.cli import export as export_cli  # noqa: E402
from dmlbench.cli.runs import Workspace, load_torch_model, run_transform  # noqa: E402
from dmlbench.errors import DmlbenchError  # noqa: E402
from dmlbench.cli.export_onnx import EmbeddingNetwork, OnnxEmbedder, weight_bytes  # noqa: E402
from tiny_workspace import RUN, make_workspace  # noqa: E402


@pytest.fixture(scope="module")
def exported(prepared, tmp_path_factory) -> Path:
    """A tiny workspace whose run is exported once (the shared state of the read-only tests below)."""
    root = make_workspace(prepared, tmp_path_factory.mktemp("onnx"))
    assert main(["export", "--run", RUN.name, "--root", str(root)]) == 0
    return root


def test_export_matches_pytorch_on_the_runs_test_images(exported):
    ws = Workspace(exported)
    record = json.loads(ws.onnx_record(RUN.name).read_text())
    assert record["run"]["name"] == RUN.name and record["side"] == 32 and record["external_data"] is False
    # The export's own bar (MIN_COSINE): two runtimes' float32 forwards of unit vectors agree to ~1e-6, and the
    # embedding of a wrong model or image has a cosine far below 0.9999.
    assert record["check"]["images"] == 12 and record["check"]["min_cosine"] >= 0.9999
    assert not (ws.onnx(RUN.name).parent / "model.onnx.data").exists()
    # The recorded Recall@1 is the stored embeddings' (embed stage, float32 CPU) Recall@1 too.
    from dmlbench.retrieval.metrics import retrieval_metrics
    test = torch.load(exported / RUN.paths.embeddings, weights_only=True)["splits"]["test"]
    assert record["check"]["recall@1"] == retrieval_metrics(test["embeddings"], test["labels"], ks=(1,))["recall@1"]


def test_dynamic_batch_gives_the_pytorch_embeddings(exported):
    ws = Workspace(exported)
    model, _ = load_torch_model(ws, RUN.name)
    session = OnnxEmbedder(ws.onnx(RUN.name))
    torch.manual_seed(1)
    for batch in (1, 5):
        images = torch.randn(batch, 3, 32, 32)
        with torch.no_grad():
            reference = EmbeddingNetwork(model)(images)
        got = session(images)
        assert got.shape == (batch, 32)
        # float32 eval-mode forwards by two runtimes (two kernel sets): ~1e-6 apart on unit vectors, so a cosine
        # of 0.9999 (the export's bar) is far below their agreement and far above a wrong model's.
        assert (reference * got).sum(dim=1).min().item() >= 0.9999
        # float32 norms of 32 values: a few roundings of 6e-8 per sum; 1e-5 bounds them on any vector width
        assert torch.allclose(got.norm(dim=1), torch.ones(batch), rtol=0, atol=1e-5)


def test_query_with_onnx_ranks_as_with_pytorch(exported, tmp_path, capsys):
    image = exported / "data/prepared/synthetic-uncropped" / torch.load(
        exported / RUN.paths.embeddings, weights_only=True)["splits"]["test"]["paths"][3]
    printed = {}
    for flag in ([], ["--onnx"]):
        assert main(["query", str(image), "--run", RUN.name, "--k", "5", "--root", str(exported), "--out",
                     str(tmp_path / "q.png"), *flag]) == 0
        rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.strip()[:1].isdigit()]
        printed[bool(flag)] = rows
    assert [r[1] for r in printed[True]] == [r[1] for r in printed[False]]
    # 2e-4: the 4 printed decimals (5e-5 each side) plus two runtimes' float32 similarities (~1e-6)
    assert [float(r[3]) for r in printed[True]] == pytest.approx([float(r[3]) for r in printed[False]], abs=2e-4)


def test_onnx_query_needs_no_torch_model(exported, tmp_path, capsys):
    root = Path(shutil.copytree(exported, tmp_path / "ws"))
    (root / RUN.paths.model).unlink()  # only the export, the embeddings and the images remain
    image = root / "data/prepared/synthetic-uncropped" / torch.load(
        root / RUN.paths.embeddings, weights_only=True)["splits"]["test"]["paths"][0]
    assert main(["query", str(image), "--run", RUN.name, "--onnx", "--root", str(root), "--k", "2", "--out",
                 str(tmp_path / "q.png")]) == 0
    assert main(["query", str(image), "--run", RUN.name, "--root", str(root), "--out", str(tmp_path / "t.png")]) == 2
    assert "with a model file" in capsys.readouterr().err


def test_large_models_use_the_external_data_format(exported, tmp_path):
    root = Path(shutil.copytree(exported, tmp_path / "ws"))
    ws = Workspace(root)
    record = export_cli.export_run(ws, RUN.name, external_limit=0)  # any model counts as "over 2 GB" here
    folder = ws.onnx(RUN.name).parent
    assert record["external_data"] is True
    model, _ = load_torch_model(ws, RUN.name)
    data = (folder / "model.onnx.data").stat().st_size
    assert data >= weight_bytes(model) * 0.9 and (folder / "model.onnx").stat().st_size < data / 10
    # onnxruntime found the weights beside the graph: the export's bar (see the first test) is met
    assert record["check"]["min_cosine"] >= 0.9999
    assert sorted(p.name for p in (root / "exports").iterdir()) == [RUN.name]  # no staging folder left


def test_a_failed_check_replaces_nothing(exported, tmp_path, monkeypatch):
    root = Path(shutil.copytree(exported, tmp_path / "ws"))
    ws = Workspace(root)
    before = ws.onnx(RUN.name).read_bytes()
    monkeypatch.setattr(export_cli, "MIN_COSINE", 1.5)  # no cosine reaches it: the check must refuse

    def reuse(model, side, path, **_):  # the exported file itself, without exporting again (seconds)
        shutil.copy(ws.onnx(RUN.name), path)
        return False

    monkeypatch.setattr(export_cli, "export_onnx", reuse)
    with pytest.raises(DmlbenchError, match=r"disagrees with PyTorch on the 12 evaluation images.*nothing was"):
        export_cli.export_run(ws, RUN.name)
    assert ws.onnx(RUN.name).read_bytes() == before
    assert sorted(p.name for p in (root / "exports").iterdir()) == [RUN.name]


def test_exports_where_a_file_stands_is_one_line(exported, tmp_path, capsys):
    """The folder cannot be made (a file has its name): the same OSError path a read-only exports/ takes."""
    root = Path(shutil.copytree(exported, tmp_path / "ws"))
    shutil.rmtree(root / "exports")
    (root / "exports").write_text("my notes\n")
    assert main(["export", "--run", RUN.name, "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"dmlbench: error: cannot write the export under "
                                                   f"{root / 'exports'} (FileExistsError: "), err
    assert err.rstrip().endswith("then run dmlbench export again; no export was replaced")
    assert (root / "exports").read_text() == "my notes\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder anyway (no EACCES to provoke); "
                                              "the test above takes the same path with a file in the way")
def test_a_read_only_exports_folder_is_one_line(exported, tmp_path, capsys):
    root = Path(shutil.copytree(exported, tmp_path / "ws"))
    before = (root / "exports" / RUN.name / "model.onnx").read_bytes()
    (root / "exports").chmod(0o555)
    try:
        assert main(["export", "--run", RUN.name, "--root", str(root)]) == 2
    finally:
        (root / "exports").chmod(0o755)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "(PermissionError: " in err, err
    assert (root / "exports" / RUN.name / "model.onnx").read_bytes() == before


def test_a_failed_move_into_place_puts_the_old_export_back(exported, tmp_path, monkeypatch):
    root = Path(shutil.copytree(exported, tmp_path / "ws"))
    ws = Workspace(root)
    before = ws.onnx(RUN.name).read_bytes()
    monkeypatch.setattr(export_cli, "export_onnx", lambda model, side, path, **_: shutil.copy(ws.onnx(RUN.name), path)
                        and False)  # the exported file itself, without exporting again (seconds)
    real_rename = Path.rename

    def refuse_the_new_one(self, target):
        staged = self.name.startswith(f".{RUN.name}.") and not self.name.startswith(f".{RUN.name}.old-")
        if staged and Path(target) == ws.onnx(RUN.name).parent:
            raise PermissionError(13, "Permission denied", str(target))
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", refuse_the_new_one)
    with pytest.raises(DmlbenchError, match=r"cannot write the export under .*\(PermissionError: .*no export was "
                                            r"replaced"):
        export_cli.export_run(ws, RUN.name)
    assert ws.onnx(RUN.name).read_bytes() == before
    assert sorted(p.name for p in (root / "exports").iterdir()) == [RUN.name]  # no staging or .old folder left


def test_another_network_fails_the_check(exported):
    ws = Workspace(exported)
    model, saved = load_torch_model(ws, RUN.name)
    _, _, transform = run_transform(saved, ws.model(RUN.name))
    torch.manual_seed(5)
    other = type(model)("resnet18", "SG", 32, 3, False, False).eval()  # same architecture, other weights
    with pytest.raises(DmlbenchError, match="disagrees with PyTorch"):
        export_cli.check_export(other, OnnxEmbedder(ws.onnx(RUN.name)), ws.prepared(saved["run"]), transform)


def test_export_of_a_missing_run_is_one_line(exported, capsys):
    assert main(["export", "--run", "nope", "--root", str(exported)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such run 'nope'" in err


def test_lrec_exports_its_fused_form_and_matches_the_cpus_loop(tmp_path):
    # On the CPU LREC runs its learners one by one (functional calls, which cannot be traced); the export
    # traces the fused form: one convolution per layer, not one per learner, with the same embeddings.
    import onnx

    from dmlbench.cli.export_onnx import export_onnx
    from dmlbench.models.lrec import build_pair
    from dmlbench.models.meta_classes import assign_meta_classes

    torch.manual_seed(0)
    model, _ = build_pair("resnet18", False, 3, assign_meta_classes(10, 4, 3, 0), 4)
    model.eval()
    images = torch.randn(2, 3, 32, 32)
    assert not model.runs_fused(images)
    export_onnx(model, 32, tmp_path / "lrec.onnx")
    convs = sum(node.op_type == "Conv" for node in onnx.load(str(tmp_path / "lrec.onnx")).graph.node)
    assert convs == sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) == 20  # ResNet-18's 20
    onnx_embeddings = OnnxEmbedder(tmp_path / "lrec.onnx").session.run(None, {"images": images.numpy()})[0]
    # Two algorithms in two runtimes, in float32 (ONNX Runtime's CPU Conv has no float64): eval mode has no batch
    # statistics to amplify rounding; measured 4-5e-7 apart on this Xeon (default ISA and AVX2). 1e-5 of a unit
    # vector leaves 20x, and a wrong slice of the fused weights moves the embedding by its own size.
    torch.testing.assert_close(torch.nn.functional.normalize(torch.from_numpy(onnx_embeddings), dim=1),
                               model(images)[0].detach(), rtol=0, atol=1e-5)


@pytest.mark.parametrize("umask, expected", [(0o002, 0o775), (0o022, 0o755)])
def test_the_export_folder_gets_mkdirs_mode_not_0700(exported, tmp_path, umask, expected):
    """exports/<run>/ is a colleague's to read on a shared server (issue 30): the umask decides, as for mkdir."""
    import stat
    root = Path(shutil.copytree(exported, tmp_path / "ws"))
    ws = Workspace(root)
    shutil.rmtree(ws.onnx(RUN.name).parent)
    previous = os.umask(umask)
    try:
        export_cli.export_run(ws, RUN.name)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(ws.onnx(RUN.name).parent.stat().st_mode) == expected
