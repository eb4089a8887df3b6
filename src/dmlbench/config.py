"""params.yaml -> typed, validated dataclasses: the only place params enter the library."""

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

from dmlbench.errors import DmlbenchError

T = TypeVar("T")


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


def build(cls: type[T], values: Any, where: str) -> T:
    """Build dataclass ``cls`` from a mapping, checking unknown keys and each field's type."""
    if not isinstance(values, Mapping):
        raise DmlbenchError(f"params.yaml: '{where}' must be a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise DmlbenchError(
            f"params.yaml: unknown key {where + '.' if where else ''}{unknown[0]} "
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
    if hint is bool and not isinstance(value, bool) or hint is not bool and isinstance(value, bool):
        raise DmlbenchError(f"params.yaml: {where} must be {hint.__name__}, got {value!r}")
    if not isinstance(value, hint):
        raise DmlbenchError(f"params.yaml: {where} must be {hint.__name__}, got {value!r}")
    return value


def require(ok: bool, message: str) -> None:
    """Raise a params error with ``message`` unless ``ok`` (for __post_init__ range checks)."""
    if not ok:
        raise DmlbenchError(f"params.yaml: {message}")


def plain(value: Any) -> Any:
    """Tuples as lists, recursively: configs compare equal after a round trip through a file."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
