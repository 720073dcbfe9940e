"""The docs site and the README say nothing stale: every ``rb-crossclass ...`` command line in
README.md and docs/**/*.md parses with the real argparse parsers, every module or file path they
name exists, the Benchmarks page is generated from ``benchmarks/results`` and ``mkdocs build
--strict`` passes.

A command line marked ``# exit status N`` (N > 0) is deliberately wrong and may fail to parse; a
line holding ``...`` (flags of a command shown elsewhere) has each of its ``--flags`` checked
against its command's parser instead of being parsed whole.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import shlex
import subprocess
import sys

import pytest
from test_docs_examples import BLOCKS, ROOT, commands, example_files

from rb_crossclass.cli import build_parser

INLINE_FRAGMENT = -1  # inline code quotes part of a command: its flags are checked, not the whole line
STOP = {"|", "||", "&&", ";", ">", ">>", "<", "2>", "&", "(", ")"}
INLINE = re.compile(r"`((?:\S*/)?rb-crossclass [a-z][^`]*)`")


def _argv(command: str) -> list[str] | None:
    """The arguments after ``rb-crossclass`` (or ``-m rb_crossclass``) of one shell command line,
    up to the first pipe, redirection or list operator; None when the line runs no rb-crossclass."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    tokens = list(lexer)
    for i, token in enumerate(tokens):
        at_start = i == 0 or tokens[i - 1] in STOP or re.fullmatch(r"\w+=\S*", tokens[i - 1]) is not None
        program = token.rsplit("/", 1)[-1] == "rb-crossclass" and at_start
        if program or (token == "rb_crossclass" and i > 0 and tokens[i - 1] == "-m"):
            rest = tokens[i + 1:]
            end = next((j for j, t in enumerate(rest) if t in STOP), len(rest))
            return rest[:end]
    return None


def command_lines() -> list[tuple[str, list[str], int]]:
    """``(where, argv, expected exit status)`` of every rb-crossclass command line of README.md and
    docs/: in bash blocks (skipped ones too: they must not go stale either) and in inline code
    (expected :data:`INLINE_FRAGMENT`)."""
    out = []
    for block in BLOCKS:
        if block.lang != "bash":
            continue
        for offset, cmd, expected in commands(block.body):
            argv = _argv(cmd)
            if argv is not None:
                out.append((f"{block.file}:{block.line + offset}", argv, expected))
    for path in example_files():
        text = path.read_text(encoding="utf-8")
        for m in INLINE.finditer(text):
            span = m.group(1)
            if "<" in span or "|" in span or span.rstrip().endswith(("rb-crossclass", "...")):
                continue  # a synopsis (`<command>`, `a|b`) or a name, not a command line
            argv = _argv(span)
            if argv and argv[0] in _subcommands(build_parser()) and any(a.startswith("-") for a in argv):
                out.append((f"{path.relative_to(ROOT).as_posix()}:{text.count(chr(10), 0, m.start()) + 1}",
                            argv, INLINE_FRAGMENT))
    return out


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _flags_known(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """The ``--flags`` of ``argv`` its (sub)command's parser does not know."""
    i = 0
    while i < len(argv) and argv[i] in _subcommands(parser):
        parser = _subcommands(parser)[argv[i]]
        i += 1
    known = parser._option_string_actions
    return [t for t in argv[i:] if t.startswith("--") and t.split("=", 1)[0] not in known]


LINES = command_lines()


def test_docs_name_commands():
    assert len(LINES) >= 40, "README.md and docs/ lost their command lines?"
    assert {argv[0] for _, argv, _ in LINES} >= {"score", "evaluate", "card", "leaderboard", "train",
                                                 "reproduce", "sweep", "zoo", "synthetic", "demo"}


@pytest.mark.parametrize("where,argv,expected", LINES, ids=[w for w, _, _ in LINES])
def test_command_line_parses(where, argv, expected):
    parser = build_parser()
    if "..." in argv or expected == INLINE_FRAGMENT:
        assert not _flags_known(parser, argv), f"{where}: unknown flags in {shlex.join(argv)}"
        return
    try:
        parser.parse_args(argv)
    except SystemExit as done:  # --help / --version
        assert done.code == 0, f"{where}: {shlex.join(argv)} exits {done.code}"
    except Exception as err:  # noqa: BLE001 - the CLI's parser raises UsageError (and argparse's own)
        if expected == 0:
            pytest.fail(f"{where}: `rb-crossclass {shlex.join(argv)}` does not parse: {err}")


def test_a_stale_flag_is_caught():
    """The check itself: a flag no parser has (``evaluate --pgd``, once in docs/sweep.md) fails."""
    argv = _argv("rb-crossclass evaluate --model zoo:X --dataset sample:cifar10 --pgd --out runs/x  # note")
    assert argv == ["evaluate", "--model", "zoo:X", "--dataset", "sample:cifar10", "--pgd", "--out", "runs/x"]
    with pytest.raises(Exception, match="--pgd"):
        build_parser().parse_args(argv)
    assert _flags_known(build_parser(), ["score", "...", "--pgd", "--bf16"]) == ["--pgd"]
    assert _argv("torchrun --nproc_per_node 4 -m rb_crossclass train --config x | tee log")[:1] == ["train"]


# Paths and dotted names the docs give for code. Example files of a user's own are not ours.
DOTTED = re.compile(r"`(rb_crossclass(?:\.\w+)+)")
PATH = re.compile(r"`((?:rb_crossclass|benchmarks|tests|leaderboards|model_zoo|docs|\.ci)/[\w./-]*\w/?)`")
BARE_PY = re.compile(r"`(\w+\.py)`")
USER_FILES = {"my_models.py", "models.py"}  # a user's own model file in examples
WHEEL_ONLY = {"rb_crossclass/model_zoo"}  # where the wheel puts model_zoo/ (pyproject's sources)


def _named(pattern: re.Pattern, whole: bool = False) -> list[tuple[str, object]]:
    """``(file:line, first group)`` of every match in README.md and docs/ (the match itself if ``whole``)."""
    out = []
    for path in example_files():
        text = path.read_text(encoding="utf-8")
        for m in pattern.finditer(text):
            where = f"{path.relative_to(ROOT).as_posix()}:{text.count(chr(10), 0, m.start()) + 1}"
            out.append((where, m if whole else m.group(1)))
    return out


def _resolves(dotted: str) -> bool:
    """A module, or an attribute of the longest importable module prefix."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        name = ".".join(parts[:cut])
        try:
            if importlib.util.find_spec(name) is None:
                continue
        except ModuleNotFoundError:  # a child of a plain module: an attribute, tried with a shorter prefix
            continue
        obj = importlib.import_module(name)
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


SUBPACKAGES = sorted(p.name for p in (ROOT / "rb_crossclass").iterdir() if (p / "__init__.py").is_file())
# `crossclass.uncertainty.X` names a module; `sweep.json` is a file
FILE_SUFFIX = r"(?!\.(?:json|py|md|png|pdf|svg|yaml|html|pt|npz|txt)`)"
RELATIVE = re.compile(rf"`((?:{'|'.join(SUBPACKAGES)}){FILE_SUFFIX}\.\w+(?:\.\w+)*)`")
IMPORT = re.compile(r"from (rb_crossclass(?:\.\w+)*) import (?:\(([\w,\s]+)\)|([\w, ]+))")


def _imported() -> list[tuple[str, str]]:
    """``from rb_crossclass.x import a, b`` anywhere (code blocks and prose) as ``rb_crossclass.x.a``."""
    out = []
    for where, match in _named(IMPORT, whole=True):
        module, names = match.group(1), match.group(2) or match.group(3)
        out += [(where, f"{module}.{n.strip()}") for n in names.split(",") if n.strip()]
    return out


def test_every_module_named_in_the_docs_exists():
    named = _named(DOTTED) + [(w, f"rb_crossclass.{n}") for w, n in _named(RELATIVE)] + _imported()
    assert len(named) >= 10
    missing = [f"{where}: {name}" for where, name in named
               if not _resolves(name)]
    assert not missing, "the docs name modules or objects that do not exist:\n" + "\n".join(missing)


def test_every_file_path_named_in_the_docs_exists():
    files = {p.name for p in ROOT.rglob("*.py") if ".venv" not in p.parts}
    missing = [f"{where}: {name}" for where, name in _named(PATH)
               if "*" not in name and name not in WHEEL_ONLY and not (ROOT / name).exists()]
    missing += [f"{where}: {name}" for where, name in _named(BARE_PY)
                if name not in files and name not in USER_FILES]
    assert not missing, "the docs name files that do not exist:\n" + "\n".join(missing)


def test_benchmarks_page_is_generated_from_every_result(tmp_path):
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        gen = importlib.import_module("gen_benchmarks")
    finally:
        sys.path.remove(str(ROOT / "docs"))
    page = gen.render()
    for result in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        assert f"`benchmarks/results/{result.name}`" in page
    for script in gen.SCRIPTS:
        assert (ROOT / "benchmarks" / script).is_file(), script
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: not valid JSON"):
        gen.render(tmp_path)
    (tmp_path / "bad.json").write_text('{"benchmark": "b", "x": {"y": [1.5, 2], "z": 1e-9}}')
    assert "| `x.y` | 1.5, 2 |" in gen.render(tmp_path) and "| `x.z` | 1.000e-09 |" in gen.render(tmp_path)


def test_readme_is_short_and_points_outside_users_at_their_sources():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    assert "../shared" not in text, "README examples must work outside this repository"
    assert "git clone --depth 1 https://github.com/RobustBench/robustbench" in text
    assert "--from-official" in text


def test_mkdocs_build_strict(tmp_path):
    """The site builds in strict mode (about 3 s): nav, links, the API reference, the Benchmarks page."""
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    if importlib.util.find_spec("mkdocstrings_handlers") is None:
        pytest.skip("mkdocstrings-python is not installed (pip install -e '.[docs]')")
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    api = (tmp_path / "site" / "python-api" / "index.html").read_text(encoding="utf-8")
    # mkdocstrings rendered the reference, the top-level exports where rb_crossclass names them
    assert 'id="rb_crossclass.score_model"' in api and 'id="rb_crossclass.ComputeSettings"' in api
    assert (tmp_path / "site" / "benchmarks" / "index.html").is_file()
