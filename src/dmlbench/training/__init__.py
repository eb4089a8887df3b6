"""The training loop, one step, precision, checkpoints, DDP and the model file."""
