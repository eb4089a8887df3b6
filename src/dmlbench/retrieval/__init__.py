"""Embedding extraction, exact k-NN ranks and retrieval metrics."""
