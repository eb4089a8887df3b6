"""Moved to dmlbench.params.load. This alias stays only while modules and tests outside the params refactor still
import it (methods/*, tests/methods/*, tests/data/*, benchmarks/*.py): change their import, then delete this file."""

from dmlbench.params.load import (NUMBER, PER_DATASET, SEED_RANGE, build, check_seed, check_top_level,  # noqa: F401
                                  load_params, method_section, plain, require, section)
