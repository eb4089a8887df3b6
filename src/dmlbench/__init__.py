"""dmlbench: deep-metric-learning image retrieval as a reproducible DVC pipeline."""

__version__ = "0.1.0"
