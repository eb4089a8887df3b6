"""README.md, docs/ and benchmarks/README.md: every relative link resolves (the file, and a #anchor to a heading
of it by GitHub's slug rules), and every dvc / dmlbench / python command in a code block names stages, files,
params and options that exist. Parsed in-process (YAML, argparse), no subprocess, so it stays fast."""

import argparse
import contextlib
import functools
import importlib.util
import io
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml
from dvc.cli import DvcParserError
from dvc.cli.parser import get_main_parser

from dmlbench.cli import parser as dmlbench_parser

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")), REPO / "benchmarks/README.md"]
FENCE = re.compile(r"^ *```[^\n]*\n.*?^ *```", re.M | re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")
TOOLS = ("dvc", "dmlbench", "python", "torchrun", "pip")
COMMAND = re.compile(rf"\s*(?:{'|'.join(TOOLS)})\s")
HOLE = "HOLE"  # what a <placeholder> or ... becomes: a value the reader fills in, so it is not checked
OPERATORS = {";", "&&", "||", "|", "&"}


def _name(page: Path) -> str:
    return str(page.relative_to(REPO))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: rendered text, lower case, punctuation but - and _ dropped, spaces -> -."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").replace("*", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


@functools.cache
def anchors(page: Path) -> frozenset[str]:
    """Every anchor GitHub gives the page's headings (a repeated one gets -1, -2, ...)."""
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", page.read_text(encoding="utf-8")).splitlines():
        if match := re.match(r"#{1,6} (.*)", line):
            base = slug(match.group(1))
            out.add(base if base not in seen else f"{base}-{seen[base]}")
            seen[base] = seen.get(base, 0) + 1
    return frozenset(out)


def link_problems(page: Path) -> list[str]:
    """Relative links of the page (code left out) whose file is missing or whose #anchor is no heading of it."""
    text = re.sub(r"`[^`]*`", "", FENCE.sub("", page.read_text(encoding="utf-8")))
    problems = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto: are not files of the repository
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path) if path else page
        if not file.exists():
            problems.append(f"{page.name}: link {target}: {path} does not exist")
        elif anchor and (file.suffix != ".md" or anchor not in anchors(file.resolve())):
            problems.append(f"{page.name}: link {target}: no heading of {file.name} has the anchor #{anchor}")
    return problems


def code_commands(text: str) -> list[str]:
    """Command lines of a page: fenced lines that start with a tool (continuations joined, side-by-side columns
    split) and inline code spans that start with one (a span starting with -S is a `dvc exp run` option)."""
    lines = []
    for block in FENCE.findall(text):
        for line in re.sub(r"\\\n", " ", block).splitlines()[1:-1]:
            lines += [c for c in re.split(rf"\s{{3,}}(?=(?:{'|'.join(TOOLS)})\s)", line) if COMMAND.match(c)]
    for span in re.findall(r"`([^`]+)`", FENCE.sub("", text)):
        span = " ".join(span.split())
        span = f"dvc exp run {span}" if span.startswith("-S ") else span
        if COMMAND.match(span + " "):
            lines.append(span)
    return lines


def split_commands(line: str) -> list[list[str]]:
    """A shell line -> the token lists of its commands (`$(...)` is a command of its own; comments dropped)."""
    line = re.sub(r"<[^<>]*>|\.\.\.", HOLE, line)
    line = re.sub(r"\[(-[^\]]*)\]", r"\1", line)  # usage notation: [-S key=value] is an optional option
    inner = re.findall(r"\$\(([^()]*)\)", line)
    lexer = shlex.shlex(re.sub(r"\$\([^()]*\)", " ", line), posix=True, punctuation_chars=";&|")
    lexer.whitespace_split, lexer.commenters = True, "#"
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in OPERATORS:
            commands.append([])
        else:
            commands[-1].append(token)
    return [c for c in commands if c] + [c for part in inner for c in split_commands(part)]


@functools.cache
def pipeline_stages(path: Path) -> dict:
    """Stage name -> the keys of its foreach (None for a plain stage), `${var}` read from the file's vars."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    var: dict = {}
    for entry in doc.get("vars", []):
        var.update(yaml.safe_load((path.parent / entry).read_text()) if isinstance(entry, str) else entry)
    stages = {}
    for name, stage in doc["stages"].items():
        each = stage.get("foreach")
        if isinstance(each, str):
            each = functools.reduce(lambda node, key: node[key], each[2:-1].split("."), var)  # "${a.b}"
        stages[name] = None if each is None else frozenset(map(str, each))
    return stages


def target_problems(target: str) -> list[str]:
    """A dvc target: a file, `[dvc.yaml:]stage` or `[dvc.yaml:]stage@key` of a foreach."""
    file, sep, stage = target.rpartition(":")
    if not sep and (REPO / target).exists():
        return []
    path = REPO / (file or "dvc.yaml")
    if not path.is_file():
        return [f"target {target}: {path.relative_to(REPO)} does not exist"]
    name, at, key = stage.partition("@")
    stages = pipeline_stages(path)
    if name not in stages:
        return [f"target {target}: no stage {name!r} in {path.relative_to(REPO)}"]
    if at and HOLE not in key and key not in (stages[name] or ()):
        return [f"target {target}: {name!r} has no foreach key {key!r}"]
    return []


def param_problems(setting: str) -> list[str]:
    """A `-S [file:]key=value`: the dotted key exists in params.yaml (or the named file)."""
    file, _, key = setting.split("=", 1)[0].rpartition(":")
    node = yaml.safe_load((REPO / (file or "params.yaml")).read_text(encoding="utf-8"))
    for part in key.split(".") if HOLE not in key else ():
        if not isinstance(node, dict) or part not in node:
            return [f"-S {setting}: {key} is not a key of {file or 'params.yaml'}"]
        node = node[part]
    return []


def dvc_problems(args: list[str]) -> list[str]:
    """dvc's own parser accepts the line; its targets and -S keys exist."""
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            ns = get_main_parser().parse_args(args)
    except (DvcParserError, SystemExit):
        return [] if _dvc_group(args) else [f"dvc {' '.join(args)}: dvc's parser refuses it"]
    targets = [*(getattr(ns, "targets", None) or []), *([ns.target] if getattr(ns, "target", None) else [])]
    problems = [p for t in targets for p in target_problems(t)]
    return problems + [p for s in getattr(ns, "set_param", None) or [] for p in param_problems(s)]


def _dvc_group(args: list[str]) -> bool:
    """Whether the words name a group of dvc's commands (`dvc queue` in prose), not a full command line."""
    node = get_main_parser()
    for word in args:
        sub = next((a for a in node._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is None or word not in sub.choices:
            return False
        node = sub.choices[word]
    return any(isinstance(a, argparse._SubParsersAction) for a in node._actions)


def dmlbench_problems(args: list[str]) -> list[str]:
    """The subcommand and every flag exist in the `dmlbench` console script's parser."""
    sub = next(a for a in dmlbench_parser()._actions if isinstance(a, argparse._SubParsersAction))
    if not args or args[0] not in sub.choices:
        return [f"dmlbench {' '.join(args)}: no such subcommand (choices: {', '.join(sub.choices)})"]
    flags = {s for action in sub.choices[args[0]]._actions for s in action.option_strings}
    return [f"dmlbench {args[0]}: no option {a}" for a in args[1:] if a.startswith("-") and a not in flags]


def python_problems(args: list[str]) -> list[str]:
    """`python file.py` / `python -m module`: it exists and every --flag (and a module's subcommand) is in its
    source; pytest's arguments are paths that exist; `dmlbench.grid sets <cell>` names a cell of the grid."""
    if args[:1] != ["-m"]:
        if not (REPO / args[0]).is_file():
            return [f"python {args[0]}: no such file"]
        return _flag_problems(args[0], (REPO / args[0]).read_text(encoding="utf-8"), args[1:])
    module, rest = args[1], args[2:]
    if importlib.util.find_spec(module) is None:
        return [f"python -m {module}: no such module"]
    if module == "pytest":
        return [f"pytest {a}: no such path" for a in rest if "/" in a and not (REPO / a.split("::")[0]).exists()]
    spec = importlib.util.find_spec(f"{module}.__main__") or importlib.util.find_spec(module)
    source = Path(spec.origin).read_text(encoding="utf-8")
    problems = _flag_problems(module, source, rest)
    if rest and not rest[0].startswith("-") and f'"{rest[0]}"' not in source:
        problems.append(f"python -m {module}: no subcommand {rest[0]!r}")
    if module == "dmlbench.grid" and rest[:1] == ["sets"] and HOLE not in rest[1]:
        problems += target_problems(f"benchmarks/dvc.yaml:cell@{rest[1]}")
    return problems


def _flag_problems(name: str, source: str, args: list[str]) -> list[str]:
    flags = [a.split("=")[0] for a in args if a.startswith("--")]
    return [f"{name}: no option {f}" for f in flags if f'"{f}"' not in source and f"'{f}'" not in source]


def other_problems(tool: str, args: list[str]) -> list[str]:
    """torchrun: its script exists; pip install: the extras named exist in pyproject.toml."""
    if tool == "torchrun":
        return [f"torchrun {a}: no such file" for a in args if a.endswith(".py") and not (REPO / a).is_file()]
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    named = [e for a in args if (m := re.fullmatch(r"\.\[(.*)\]", a)) for e in m.group(1).split(",")]
    return [f"pip: no extra {e!r} in pyproject.toml" for e in named if e not in extras]


def run_problems(args: list[str]) -> list[str]:
    """A concrete `--run <name>` names a run of the workspace (its metrics file is committed)."""
    names = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--run" and HOLE not in args[i + 1]]
    return [f"--run {n}: no metrics/runs/{n}.json" for n in names if not (REPO / f"metrics/runs/{n}.json").is_file()]


def command_problems(line: str) -> list[str]:
    """Every problem of the commands of one shell line."""
    checks = {"dvc": dvc_problems, "dmlbench": dmlbench_problems, "python": python_problems}
    problems = []
    for tool, *args in split_commands(line):
        if tool in TOOLS:
            check = checks.get(tool, functools.partial(other_problems, tool))
            problems += check(args) + run_problems(args)
    return problems


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_relative_link_resolves(page):
    assert link_problems(page) == []


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_command_names_what_exists(page):
    lines = code_commands(page.read_text(encoding="utf-8"))
    assert [f"{line!r}: {p}" for line in lines for p in command_problems(line)] == []


def test_readme_is_a_front_page_with_the_two_commands_first():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 350  # the hard limit (#28, item 6)
    assert re.findall(r"^## .*", readme, re.M)[0] == "## Two commands"
    first = [line.split("  #")[0].strip() for line in FENCE.search(readme).group().splitlines()[1:-1]]
    assert first == ["pip install -e . && dvc repro", "pip install -e '.[test]' && python -m pytest"]
    assert first[1] in (REPO / ".ci/run").read_text().splitlines()  # CI runs exactly the README's test command


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(REPO / t.partition("#")[0]).resolve() for t in LINK.findall((REPO / "README.md").read_text())}
    assert [_name(p) for p in PAGES[1:] if p.resolve() not in linked] == []


@pytest.mark.parametrize("heading, anchor", [
    ("Model selection (`train.select`)", "model-selection-trainselect"),
    ("Params | MACs at 1x3x224x224 (full model, classifier included)",
     "params--macs-at-1x3x224x224-full-model-classifier-included"),
    ("Your own data (`folder`)", "your-own-data-folder"),
    ("CGD-TF as implemented", "cgd-tf-as-implemented"),
])
def test_slug_follows_github(heading, anchor):
    assert slug(heading) == anchor


def test_link_problems_finds_a_missing_file_and_a_missing_anchor(tmp_path):
    (tmp_path / "b.md").write_text("# Title\n\n## Part\n\n## Part\n\n```\n# not a heading\n```\n")
    page = tmp_path / "a.md"
    page.write_text("[x](b.md#part-1) [y](b.md#title) `[z](gone.md)` [w](gone.md) [v](b.md#not-a-heading) "
                    "[u](https://example.org/x#y)\n")
    assert link_problems(page) == ["a.md: link gone.md: gone.md does not exist",
                                   "a.md: link b.md#not-a-heading: no heading of b.md has the anchor #not-a-heading"]


@pytest.mark.parametrize("line, problem", [
    ("dvc repro nosuchstage", "no stage 'nosuchstage' in dvc.yaml"),
    ("dvc repro benchmarks/dvc.yaml:cell@no-such-cell", "'cell' has no foreach key 'no-such-cell'"),
    ("dvc repro --no-such-flag", "dvc's parser refuses it"),
    ("dvc queue no-such-command", "dvc's parser refuses it"),
    ("dvc exp run -S cgd.no_such_key=1", "cgd.no_such_key is not a key of params.yaml"),
    ("dmlbench query photo.jpg --no-such-flag", "dmlbench query: no option --no-such-flag"),
    ("dmlbench nosuch", "no such subcommand"),
    ("python benchmarks/no_such_script.py", "no such file"),
    ("python benchmarks/eval_speed.py --no-such-flag", "no option --no-such-flag"),
    ("python -m dmlbench.grid nosuch", "no subcommand 'nosuch'"),
    ("dvc exp run $(python -m dmlbench.grid sets no-such-cell)", "no foreach key 'no-such-cell'"),
    ("dmlbench query x.jpg --run no-such-run", "no metrics/runs/no-such-run.json"),
    ("pip install -e '.[nosuch]' && python -m pytest", "no extra 'nosuch'"),
])
def test_command_problems_finds_what_does_not_exist(line, problem):
    found = command_problems(line)
    assert len(found) == 1 and problem in found[0], found


def test_command_problems_accepts_placeholders_foreach_cells_and_side_by_side_columns():
    assert command_problems("dvc repro benchmarks/dvc.yaml:cell@<cell 1>; dvc queue logs <exp>; dvc queue") == []
    assert command_problems("dvc exp run -S method=cgd [-S cgd.margin=0.2] -S ...") == []
    cell = next(iter(pipeline_stages(REPO / "benchmarks/dvc.yaml")["cell"]))
    assert command_problems(f"dvc repro benchmarks/dvc.yaml:cell@{cell}   # one cell") == []
    assert code_commands(f"```\ndvc repro a:b    dvc repro c:d\ngit add x\n```\n`-S seed=1`, `dvc.yaml`") == [
        "dvc repro a:b", "dvc repro c:d", "dvc exp run -S seed=1"]
