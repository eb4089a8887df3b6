"""Moved to dmlbench.pipeline.experiment. This alias stays only while tests and benchmarks outside the params
refactor still import method_config (tests/test_complexity.py, tests/methods/*, benchmarks/*.py): change their
import, then delete this file."""

from dmlbench.pipeline.experiment import method_config  # noqa: F401
