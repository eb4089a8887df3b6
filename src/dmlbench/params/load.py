"""params.yaml -> typed, validated dataclasses: the only place params enter the library."""

import dataclasses
import difflib
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

from dmlbench.errors import DmlbenchError

T = TypeVar("T")
PER_DATASET = "per_dataset"  # in a method's section: {dataset: {field: value}} overrides for that dataset
# PyYAML reads `1e-3` (no dot) as a string; a float field accepts such a number written by hand.
NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read params.yaml as a dict, with a one-line error when it is missing or not YAML."""
    path = Path(path)
    if not path.is_file():
        raise DmlbenchError(f"{path} not found: run stages from the repository root (where params.yaml is)")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DmlbenchError(f"{path} is not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(params, dict):
        raise DmlbenchError(f"{path} must be a mapping of param names to values")
    return params


def section(params: Mapping[str, Any], name: str, cls: type[T]) -> T:
    """Validate ``params[name]`` (a mapping) into dataclass ``cls``."""
    if name not in params:
        raise DmlbenchError(f"params.yaml has no '{name}' section: add it (see README, 'Params')")
    return build(cls, params[name], name)


def method_section(params: Mapping[str, Any], name: str, cls: type[T], dataset: str, datasets) -> T:
    """Validate the method section ``params[name]`` for ``dataset``: its ``per_dataset[dataset]`` entries override
    the section's own values (LREC's meta classes per dataset); ``datasets`` are the names allowed there."""
    if name not in params:
        raise DmlbenchError(f"params.yaml has no '{name}' section: add it (see README, 'Params')")
    values = params[name]
    if not isinstance(values, Mapping):
        raise DmlbenchError(f"params.yaml: '{name}' must be a mapping, got {values!r}")
    overrides = values.get(PER_DATASET) or {}
    if not isinstance(overrides, Mapping):
        raise DmlbenchError(f"params.yaml: {name}.{PER_DATASET} must map dataset names to mappings, got "
                            f"{overrides!r}")
    for key, entry in overrides.items():
        if key not in datasets:
            raise DmlbenchError(f"params.yaml: unknown dataset {name}.{PER_DATASET}.{key}{_closest(key, datasets)} "
                                f"(choices: {', '.join(sorted(datasets))})")
        build(cls, {**{k: v for k, v in values.items() if k != PER_DATASET}, **_mapping(entry, name, key)},
              f"{name}.{PER_DATASET}.{key}")  # every override is checked, not only the current dataset's
    merged = {k: v for k, v in values.items() if k != PER_DATASET}
    merged.update(_mapping(overrides.get(dataset, {}), name, dataset))
    return build(cls, merged, name)


def _mapping(entry: Any, name: str, dataset: str) -> Mapping:
    if not isinstance(entry, Mapping):
        raise DmlbenchError(f"params.yaml: {name}.{PER_DATASET}.{dataset} must be a mapping of {name} fields, got "
                            f"{entry!r}")
    return entry


def check_top_level(params: Mapping[str, Any], allowed) -> None:
    """Refuse a top-level key that is not ``allowed`` (a misspelled section would otherwise be ignored)."""
    for key in params:
        if key not in allowed:
            raise DmlbenchError(f"params.yaml: unknown top-level key {key!r}{_closest(key, allowed)} "
                                f"(allowed: {', '.join(sorted(allowed))})")


def _closest(name: Any, choices) -> str:
    found = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {found[0]!r}?)" if found else ""


def build(cls: type[T], values: Any, where: str) -> T:
    """Build dataclass ``cls`` from a mapping, checking unknown keys and each field's type."""
    if not isinstance(values, Mapping):
        raise DmlbenchError(f"params.yaml: '{where}' must be a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise DmlbenchError(
            f"params.yaml: unknown key {where + '.' if where else ''}{unknown[0]}{_closest(unknown[0], fields)} "
            f"(allowed: {', '.join(sorted(fields))})"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {name: _coerce(values[name], hints[name], f"{where}.{name}" if where else name) for name in values}
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise DmlbenchError(f"params.yaml: '{where or 'top level'}' is incomplete: {exc}") from None


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against a simple type hint (int, float, str, bool, Optional, tuple, Literal)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where)
    if origin is typing.Literal:
        if value not in args:
            choices = ", ".join(map(str, args))
            raise DmlbenchError(f"params.yaml: {where} = {value!r} is not allowed (choices: {choices})")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise DmlbenchError(f"params.yaml: {where} must be a list, got {value!r}")
        return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str) and NUMBER.fullmatch(value.strip()):
        return float(value)
    if hint is bool and not isinstance(value, bool) or hint is not bool and isinstance(value, bool):
        raise DmlbenchError(f"params.yaml: {where} must be {hint.__name__}, got {value!r}")
    if not isinstance(value, hint):
        raise DmlbenchError(f"params.yaml: {where} must be {hint.__name__}, got {value!r}")
    if hint is float and not math.isfinite(value):
        raise DmlbenchError(f"params.yaml: {where} must be a finite number, got {value!r}")
    return value


# np.random.seed takes an unsigned 32-bit seed (training seeds numpy globally); one range for every seed param.
SEED_RANGE = (0, 2**32 - 1)


def check_seed(value: int, where: str) -> None:
    """One error line unless ``value`` lies in SEED_RANGE (a larger seed is a traceback inside numpy)."""
    low, high = SEED_RANGE
    require(low <= value <= high, f"{where} must be in [{low}, {high}] (numpy's seed range), got {value}")


def require(ok: bool, message: str) -> None:
    """Raise a params error with ``message`` unless ``ok`` (for __post_init__ range checks)."""
    if not ok:
        raise DmlbenchError(f"params.yaml: {message}")


def flow_yaml(value: Any) -> str:
    """``value`` as one line of YAML flow style, keys in their order (the generated blocks of the params files)."""
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1000).strip()


def plain(value: Any) -> Any:
    """Tuples as lists, recursively: configs compare equal after a round trip through a file."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
