"""Losses: one module per loss, each a function of (embeddings or logits, labels) with its formula on screen."""
