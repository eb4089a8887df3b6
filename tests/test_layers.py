"""Imports only point down: no module of src/dmlbench imports one of a higher layer, lazy imports included.

The layers, top first (a module imports only from its own layer or the ones below; packages on one line are
siblings and may not import each other):

    cli                    the command line
    grid                   the benchmark grid's generator and runner
    pipeline               what the stages share: the validated experiment (it checks method, backbone and
                           dataset names against their registries), stage runner, run steps, the one prepare entry
    reporting              tables, figures, pictures, run records
    training               the training loop, checkpoints, the model file
    retrieval | methods    embedding and metrics | each method's recipe and its optimisation builders
    models | data | losses backbones, heads, precision | datasets, transforms, samplers | loss functions
    params                 the params schema and coercion, run identity
    ground                 errors, atomic writes, registry, provenance

An AST walk of every file (not an import at run time), so an import inside a function counts as much as one at
the top. A new module must be given a layer below: the test names it.
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Top first; each layer is a tuple of sibling groups, each group a tuple of module prefixes (the longest prefix
# that matches a module decides its place). identity (run names) sits with params, whose values it hashes.
LAYERS = (
    ("cli", (("dmlbench.cli",),)),
    ("grid | sweep | demo rows", (("dmlbench.grid",), ("dmlbench.sweep",), ("dmlbench.demo_rows",))),
    ("pipeline", (("dmlbench.pipeline",),)),
    ("reporting", (("dmlbench.reporting",),)),
    ("training", (("dmlbench.training",),)),
    ("retrieval | methods", (("dmlbench.retrieval",), ("dmlbench.methods",))),
    ("models | data | losses", (("dmlbench.models",), ("dmlbench.data",), ("dmlbench.losses",))),
    ("params", (("dmlbench.params", "dmlbench.identity"),)),
    ("ground", (("dmlbench.errors", "dmlbench.atomic", "dmlbench.registry", "dmlbench.provenance",
                 "dmlbench"),)),
)


def place(module: str) -> tuple[int, int] | None:
    """(layer index, sibling group index) of a dotted module name, by its longest matching prefix."""
    best, found = -1, None
    for layer, (_, groups) in enumerate(LAYERS):
        for group, prefixes in enumerate(groups):
            for prefix in prefixes:
                if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                    best, found = len(prefix), (layer, group)
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of every dmlbench import in ``path``, at any depth; `from pkg import x` gives pkg.x
    when x is a module, else pkg; relative imports resolved."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1] + [node.module or ""]).strip(".") \
                if node.level else node.module
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                is_module = (SRC / sub.replace(".", "/")).with_suffix(".py").is_file() or \
                    (SRC / sub.replace(".", "/") / "__init__.py").is_file()
                found.append((node.lineno, sub if is_module else base))
    return [(line, name) for line, name in found if name == "dmlbench" or name.startswith("dmlbench.")]


FILES = sorted((SRC / "dmlbench").rglob("*.py"))


def test_every_module_has_a_layer():
    assert FILES, "no source files found"
    missing = [module_name(p) for p in FILES if place(module_name(p)) is None]
    assert not missing, f"give these modules a layer in LAYERS: {missing}"


def test_every_prefix_names_a_module():
    # The table lists what exists: a module deleted or moved leaves no prefix behind (nor a re-export shim).
    modules = {module_name(p) for p in FILES}
    stale = [prefix for _, groups in LAYERS for prefix in sum(groups, ()) if prefix not in modules]
    assert not stale, f"drop these prefixes from LAYERS (no such module): {stale}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: module_name(p))
def test_imports_point_down(path):
    here = place(module_name(path))
    bad = []
    for line, name in imports(path):
        there = place(name)
        up = there[0] < here[0] or (there[0] == here[0] and there[1] != here[1])
        if up:
            bad.append(f"{path.relative_to(SRC)}:{line} imports {name} ({LAYERS[there[0]][0]}) from layer "
                       f"{LAYERS[here[0]][0]}")
    assert not bad, "imports that run up or sideways:\n" + "\n".join(bad)


@pytest.mark.parametrize("source, target, allowed", [
    ("dmlbench.methods.cgd", "dmlbench.models.backbones", True),  # down
    ("dmlbench.retrieval.embedding", "dmlbench.training.loop", False),  # up
    ("dmlbench.retrieval.ranking", "dmlbench.methods.method", False),  # sideways between siblings
    ("dmlbench.data.prepare", "dmlbench.atomic", True),  # to the ground
    ("dmlbench.params.load", "dmlbench.methods", False),  # params below methods
])
def test_the_order_itself(source, target, allowed):
    """The table orders what the module docstring says (a guard against an edit that flattens it)."""
    here, there = place(source), place(target)
    assert (there[0] > here[0] or there == here) == allowed
