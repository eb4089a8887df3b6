"""One seed for python, numpy and torch, and for every DataLoader worker."""

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed all global RNGs (python, numpy, torch); batches and augmentations have their own seeds."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def seed_worker(worker_id: int) -> None:
    """DataLoader worker_init_fn: derive python/numpy seeds from the worker's torch seed."""
    worker_seed = torch.initial_seed() % 2**32
    random.seed(worker_seed)
    np.random.seed(worker_seed)

