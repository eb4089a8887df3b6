"""Every project module a stage script imports (at any depth, lazily or not) is covered by the stage's deps."""

import ast
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"


def module_file(name: str) -> Path | None:
    """The source file of dotted module ``name`` under src/, or None when it is not a project module."""
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Dotted names of the dmlbench modules ``path`` imports anywhere in its body (function-level too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}  # `from pkg import module`
    return {n for n in names if n.split(".")[0] == "dmlbench" and module_file(n) is not None}


def project_files(script: Path) -> set[Path]:
    """``script`` and every project file it reaches through imports, packages' __init__ files included."""
    seen, todo = set(), [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_modules(path):
            parts = name.split(".")
            todo += [module_file(".".join(parts[:i])) for i in range(1, len(parts) + 1)
                     if module_file(".".join(parts[:i])) is not None]
    return seen


def covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(REPO)
    return any(rel == Path(d) or Path(d) in rel.parents for d in deps)


STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
# The grid's stages (benchmarks/dvc.yaml): a foreach stage's definition is under "do".
STAGES.update({f"grid:{name}": stage.get("do", stage)
               for name, stage in yaml.safe_load((REPO / "benchmarks/dvc.yaml").read_text())["stages"].items()})


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_cover_every_imported_module(name):
    stage = STAGES[name]
    script = REPO / stage["cmd"].split()[1]
    deps = [d if isinstance(d, str) else next(iter(d)) for d in stage["deps"]]
    missing = sorted(str(p.relative_to(REPO)) for p in project_files(script) if not covered(p, deps))
    assert not missing, f"stage {name} imports modules its deps in dvc.yaml miss: {missing}"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_every_code_dep_exists(name):
    """A dep under src/ or stages/ that is gone (a deleted module, a moved file) stops dvc repro: none is listed.
    The other deps (params.checked, the prepared data) are earlier stages' outs."""
    deps = [d if isinstance(d, str) else next(iter(d)) for d in STAGES[name]["deps"]]
    gone = [d for d in deps if d.startswith(("src/", "stages/")) and not (REPO / d).exists()]
    assert not gone, f"stage {name} lists deps that do not exist: {gone}"


def test_the_check_sees_lazy_imports():
    """model_file.py imports the method registry inside a function: the closure must still reach it."""
    reached = {p.relative_to(REPO).as_posix() for p in project_files(SRC / "dmlbench" / "training" / "model_file.py")}
    assert "src/dmlbench/methods/__init__.py" in reached and "src/dmlbench/methods/cgd.py" in reached
