"""One training step, read top to bottom: batch -> device -> autocast forward -> loss -> (scaled) backward -> step."""

from typing import Callable

import torch

from dmlbench.training.distributed import gather_outputs
from dmlbench.models.precision import autocast, grad_scaler, memory_format, to_device


class TrainStep:
    """One optimisation step at a resolved precision and memory format, eager or compiled.

    ``loss`` maps (outputs, labels) to the method's terms. It runs in float32 outside autocast, so bf16/fp16
    change the network's arithmetic but not the loss's. ``correct`` maps (outputs, labels) to the number of correct
    predictions, for methods whose classifier accuracy means something; None logs no accuracy.
    """

    def __init__(self, model: torch.nn.Module, loss: Callable[..., dict], device: torch.device,
                 precision: str = "fp32", channels_last: bool = False, compile: bool = False,
                 correct: Callable[..., torch.Tensor] | None = None):
        self.model, self.loss, self.correct, self.device = model, loss, correct, device
        self.precision, self.channels_last = precision, channels_last
        self.scaler = grad_scaler(device, precision)
        model.to(device, memory_format=memory_format(channels_last))
        self.compile = compile
        self.distribute(None)

    def distribute(self, where) -> None:
        """(Re)build the forward: DistributedDataParallel over the parameters that now need gradients, when
        ``where`` (a :class:`dmlbench.training.distributed.Distributed`) has several processes; compiled if asked.

        Called again when a warm-up phase ends, because DDP fixes the set of trained parameters when built.
        """
        forward = self.model
        if where is not None and where.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            forward = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        # Only the forward is compiled: ``model`` itself keeps its state_dict keys for checkpoints and model files.
        self.forward = torch.compile(forward) if self.compile else forward

    def backward(self, images: torch.Tensor, labels: torch.Tensor,
                 optimizer: torch.optim.Optimizer) -> tuple[dict[str, float], int | None, int]:
        """Forward, loss and backward of one batch: the loss terms, correct predictions (None without
        ``correct``) and images counted.

        Under DDP all three are those of the global batch (the same on every rank).
        """
        images = to_device(images, self.device, self.channels_last)
        labels = labels.to(self.device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with autocast(self.device, self.precision):
            outputs = self.forward(images)
        outputs = tuple(output.float() for output in outputs)
        # Under DDP every rank computes the loss of the whole global batch (gathered with gradients), so losses
        # that compare samples (batch-hard triplet) see every rank's samples; one process: a no-op.
        outputs, labels = gather_outputs(outputs, labels)
        terms = self.loss(outputs, labels)
        (self.scaler.scale(terms["loss"]) if self.scaler else terms["loss"]).backward()
        # One host sync per step, once backward is queued, so the GPU never idles between forward and backward.
        # float64 holds every float32 term and any count exactly: the numbers equal each term's .item().
        counts = [self.correct(outputs, labels).detach().double()] if self.correct else []
        numbers = torch.stack([*(t.detach().double() for t in terms.values()), *counts]).tolist()
        return dict(zip(terms, numbers)), int(numbers[-1]) if counts else None, len(labels)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """Apply the gradients; with fp16 the scaler skips a step whose gradients overflowed, and adapts."""
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()
