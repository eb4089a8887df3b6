"""Moved to dmlbench.params.sections. This alias stays only while modules and tests outside the params refactor
still import it (tests/methods/*, tests/data/*, benchmarks/*.py): change their import, then delete this file."""

from dmlbench.params.sections import (PRECISIONS, SECTIONS, SELECTIONS, ComplexityConfig, DataConfig,  # noqa: F401
                                      EmbedConfig, EvaluateConfig, PrepareConfig, SyntheticConfig, TablesConfig,
                                      TrainConfig, check_precision)
