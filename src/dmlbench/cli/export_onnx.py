"""ONNX export of a run's embedding network (image tensor -> L2-normalised embedding, dynamic batch) and the
onnxruntime side that runs it with no torch model.

The export uses torch's TorchScript-based exporter (``dynamo=False``): it needs only the ``onnx`` package, where
the default dynamo exporter (torch >= 2.9) would also need ``onnxscript``. Tested on torch 2.14.1.
Protobuf cannot serialise a message over 2 GB, so larger networks (LREC) are saved in ONNX's external-data
format: the graph in ``model.onnx``, the weights beside it in ``model.onnx.data``.
"""

import inspect
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from dmlbench.errors import DmlbenchError

EXTERNAL_LIMIT = 2 * 1024 ** 3  # protobuf's message limit: above it the weights go to an external data file
OPSET = 17
INPUT, OUTPUT = "images", "embeddings"


class EmbeddingNetwork(torch.nn.Module):
    """The part of a dmlbench model that retrieval uses: images -> L2-normalised float32 embeddings."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model(images)[0].float(), dim=1)


def export_onnx(model: torch.nn.Module, side: int, path: Path, external_limit: int = EXTERNAL_LIMIT) -> bool:
    """Write ``model``'s embedding network to ``path`` for (batch, 3, side, side) float32 images; returns whether
    the weights went to the external data file ``<path>.data`` (weights over ``external_limit`` bytes)."""
    import onnx

    network = EmbeddingNetwork(model).eval()
    options = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    # A folder of its own: above 2 GB the exporter writes each weight as a file beside its output.
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as tmp:
        raw = Path(tmp) / "raw.onnx"
        with warnings.catch_warnings():
            # torch >= 2.9 marks this exporter deprecated; it is chosen on purpose (module docstring).
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(network, (torch.zeros(2, 3, side, side),), str(raw), input_names=[INPUT],
                              output_names=[OUTPUT], dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
                              opset_version=OPSET, **options)
        proto = onnx.load(str(raw))  # the weights too, wherever the exporter put them
    external = weight_bytes(model) > external_limit
    onnx.save_model(proto, str(path), save_as_external_data=external, all_tensors_to_one_file=True,
                    location=path.name + ".data", size_threshold=0)
    onnx.checker.check_model(str(path))  # by path: works for the external-data format too
    return external


def weight_bytes(model: torch.nn.Module) -> int:
    """Bytes of the model's parameters and buffers: what the ONNX file must hold."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


class OnnxEmbedder:
    """An onnxruntime session of an exported embedding network: (batch, 3, H, W) tensors -> embeddings."""

    def __init__(self, path: Path):
        import onnxruntime

        if not Path(path).is_file():
            raise DmlbenchError(f"ONNX model {path} not found: run dmlbench export --run <run> first")
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: no per-node warnings on the terminal
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for a corrupt or foreign file
            raise DmlbenchError(f"cannot load ONNX model {path} ({type(exc).__name__}): rerun dmlbench export "
                                f"--run <run>") from None

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(images.float().numpy())
        return F.normalize(torch.from_numpy(self.session.run([OUTPUT], {INPUT: array})[0]).float(), dim=1)

    def embed(self, dataset, batch_size: int) -> torch.Tensor:
        """(N, D) embeddings of a dataset of (image tensor, label) in order, as embed_images gives them."""
        chunks = [self(images) for images, _ in DataLoader(dataset, batch_size=batch_size, shuffle=False)]
        return torch.cat(chunks)


def compare(torch_embeddings: torch.Tensor, onnx_embeddings: torch.Tensor) -> float:
    """The lowest cosine between the two embeddings of one image (both L2-normalised)."""
    return float((torch_embeddings * onnx_embeddings).sum(dim=1).min())
