"""Method registry: name -> Method (the contract is in ``methods/method.py``)."""

from dmlbench.methods import cgd, cgdtf, lrec, normsoftmax, unifiedproxy
from dmlbench.methods.method import Method
from dmlbench.registry import get

METHODS: dict[str, Method] = {
    "cgd": cgd.METHOD,
    "normsoftmax": normsoftmax.METHOD,
    "unifiedproxy": unifiedproxy.METHOD,
    "lrec": lrec.METHOD,
    "cgdtf": cgdtf.METHOD,
}


def get_method(name: str) -> Method:
    """Look a method up by name (unknown names list the choices)."""
    return get(METHODS, name, "method")
