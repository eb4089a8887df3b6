"""Moved to dmlbench.pipeline.prepare. This alias stays only while tests and benchmarks outside the params refactor
still import it (tests/data/test_folder_ignored.py, benchmarks/train_speed.py): change their import, then delete it."""

from dmlbench.pipeline.prepare import SYNTHETIC_RAW, prepare_folder, raw_folder  # noqa: F401
