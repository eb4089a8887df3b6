"""Plain name -> builder registries with a lookup that lists the choices."""

from typing import Any, Mapping

from dmlbench.errors import DmlbenchError


def get(registry: Mapping[str, Any], name: str, kind: str) -> Any:
    """Return ``registry[name]`` or fail with the sorted choices."""
    try:
        return registry[name]
    except KeyError:
        choices = ", ".join(sorted(registry))
        raise DmlbenchError(f"unknown {kind} {name!r} (choices: {choices})") from None
