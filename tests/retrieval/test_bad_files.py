"""No traceback on bad files: an unreadable or foreign embeddings file, or a corrupt metrics JSON, stops with
one line naming the file and the fix."""

import io
import pickle
import re

import pytest
import torch

from dmlbench.errors import DmlbenchError
from dmlbench.reporting.tables import load_json_dir
from dmlbench.retrieval.evaluation import load_embeddings

# The run the stage expects; every file below says "run": None, so one whose structure passes meets the
# run-stamp check, which comes last and is tested with the real stamps in tests/test_model_file.py.
EXPECTED_RUN = {"name": "cgd-SG-resnet18-synthetic-uncropped-demo-s0-0000"}


class Foreign:
    """An arbitrary pickled class: what weights_only loading refuses to construct."""


def split(n=4, dim=4):
    return {"embeddings": torch.nn.functional.normalize(torch.randn(n, dim), dim=1),
            "labels": torch.arange(n) % 2, "paths": [f"img/{i}.jpg" for i in range(n)]}


def torch_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def embeddings_file(splits) -> bytes:
    """An embeddings file as the embed stage writes it, around ``splits``, from another run."""
    return torch_bytes({"run": None, "training": {}, "embedding": {}, "splits": splits})


def good_file() -> bytes:
    return embeddings_file({"test": split()})


def with_split(**changes):
    return embeddings_file({"test": {**split(), **changes}})


UNREADABLE = {
    "truncated": lambda: good_file()[:len(good_file()) // 2],
    "empty": lambda: b"",
    "text": lambda: b"not an embeddings file\n",
    "plain pickle": lambda: pickle.dumps({"run": None, "splits": {}}, protocol=2),  # no torch magic number
    "pickled object": lambda: torch_bytes({"run": None, "splits": Foreign()}),  # weights_only refuses it
}

FOREIGN = {
    "a tensor": (lambda: torch_bytes(torch.zeros(3)), r'no "splits" dict'),
    "a model file": (lambda: torch_bytes({"model": {"w": torch.zeros(2)}, "run": None}), r'no "splits" dict'),
    "splits a list": (lambda: torch_bytes({"run": None, "splits": [split()]}), r'no "splits" dict'),
    "another layout": (lambda: embeddings_file({"train": split()}),
                       r"its splits are \['train'\], not test or query \+ gallery"),
    "query without gallery": (lambda: embeddings_file({"query": split()}),
                              r"its splits are \['query'\]"),
    "split not a dict": (lambda: embeddings_file({"test": [1, 2]}),
                         r'split \'test\': not a dict with "embeddings", "labels" and "paths"'),
    "no paths": (lambda: embeddings_file({"test": {"embeddings": torch.zeros(2, 4),
                                                           "labels": torch.zeros(2).long()}}),
                 r'not a dict with "embeddings", "labels" and "paths"'),
    "1-D embeddings": (lambda: with_split(embeddings=torch.zeros(4)),
                       r"embeddings must be a 2-D float tensor, got \(4,\) float32"),
    "integer embeddings": (lambda: with_split(embeddings=torch.zeros(4, 4, dtype=torch.long)),
                           r"embeddings must be a 2-D float tensor, got \(4, 4\) int64"),
    "embeddings a list": (lambda: with_split(embeddings=[[0.0] * 4] * 4), r"2-D float tensor, got list"),
    "2-D labels": (lambda: with_split(labels=torch.zeros(4, 1).long()),
                   r"labels must be a 1-D integer tensor, got \(4, 1\) int64"),
    "float labels": (lambda: with_split(labels=torch.zeros(4)), r"1-D integer tensor, got \(4,\) float32"),
    "labels count": (lambda: with_split(labels=torch.zeros(3).long()),
                     r"4 embeddings, 3 labels and 4 paths must count the same images"),
    "paths count": (lambda: with_split(paths=["a.jpg"] * 5),
                    r"4 embeddings, 4 labels and 5 paths must count the same images"),
    "paths not str": (lambda: with_split(paths=list(range(4))), r"paths must be a list of str"),
    "dimensions differ": (lambda: embeddings_file({"query": split(dim=4), "gallery": split(dim=8)}),
                          r"its splits' embeddings differ in dimension \(\[4, 8\]\)"),
}


def refusal(path) -> str:
    with pytest.raises(DmlbenchError) as excinfo:
        load_embeddings(path, EXPECTED_RUN)
    message = str(excinfo.value)
    assert "\n" not in message and str(path) in message
    return message


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_an_unreadable_embeddings_file_is_one_line(tmp_path, name):
    path = tmp_path / "embeddings.pt"
    path.write_bytes(UNREADABLE[name]())
    message = refusal(path)
    assert message.startswith(f"cannot read embeddings file {path} (")
    assert message.endswith("truncated or not written by the embed stage): rerun dvc repro embed")


@pytest.mark.parametrize("name", sorted(FOREIGN))
def test_a_foreign_embeddings_file_is_one_line(tmp_path, name):
    make, problem = FOREIGN[name]
    path = tmp_path / "embeddings.pt"
    path.write_bytes(make())
    message = refusal(path)
    assert message.startswith(f"embeddings file {path} is not an embeddings file of this pipeline (")
    assert message.endswith("): rerun dvc repro embed")
    assert re.search(problem, message), message


def test_a_well_formed_file_reaches_the_run_stamp_check(tmp_path):
    path = tmp_path / "embeddings.pt"
    for splits in ({"test": split()}, {"query": split(2), "gallery": split(6)}):
        path.write_bytes(embeddings_file(splits))
        assert "comes from another run" in refusal(path)


BAD_JSON = {
    "truncated": (b'{"run": {"method": "cgd"', r"\(JSONDecodeError: Expecting"),
    "empty": (b"", r"\(JSONDecodeError: Expecting value"),
    "not UTF-8": (b'{"a": "\xff\xfe"}', r"\(UnicodeDecodeError: "),
    "an array": (b"[1, 2]", r"holds an array, not the JSON object of a metrics file"),
    "a string": (b'"metrics"', r"holds a string, not the JSON object"),
    "null": (b"null", r"holds null, not the JSON object"),
    "a number": (b"0.5", r"holds a number, not the JSON object"),
}


@pytest.mark.parametrize("folder, stage", [("runs", "evaluate"), ("complexity", "complexity")])
@pytest.mark.parametrize("name", sorted(BAD_JSON))
def test_a_bad_metrics_json_is_one_line_naming_file_and_fix(tmp_path, folder, stage, name):
    content, problem = BAD_JSON[name]
    directory = tmp_path / "metrics" / folder
    directory.mkdir(parents=True)
    (directory / "a-good.json").write_text('{"run": {}}')
    (directory / "b-bad.json").write_bytes(content)
    with pytest.raises(DmlbenchError) as excinfo:
        load_json_dir(directory)
    message = str(excinfo.value)
    assert "\n" not in message and str(directory / "b-bad.json") in message
    assert re.search(problem, message), message
    assert message.endswith(f": delete it, or rerun dvc repro {stage} with the params of the run it records")


def test_good_metrics_json_files_load_in_name_order(tmp_path):
    (tmp_path / "b.json").write_text('{"n": 2}')
    (tmp_path / "a.json").write_text('{"n": 1}')
    (tmp_path / "notes.txt").write_text("ignored")
    assert load_json_dir(tmp_path) == [{"n": 1}, {"n": 2}]
