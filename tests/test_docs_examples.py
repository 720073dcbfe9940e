"""The examples of README.md and of the docs site run as written: every ```bash and ```python block
of README.md and docs/**/*.md is taken from the file itself (so examples and test cannot drift
apart) and run, in order (README.md first, then the pages sorted by path), in one scratch copy of a
checkout beside a ``shared`` folder, with the environment's ``bin`` first on PATH (as after
``source .venv/bin/activate``) and ``.venv`` pointing at it.

A block may be preceded by a marker comment:

- ``<!-- readme-test: needs-shared -->``: runs only when ../shared is present (skips otherwise);
- ``<!-- readme-test: skip: <reason> -->``: never run here, with the reason (downloads, GPUs,
  minutes of work, or covered by another test).

Each command of a bash block must exit with status 0, or with the status its comment announces
(``# exit status 1``). Variables set by one command are seen by the next (one shell per block).
The blocks of ``docs/reproductions/`` are records of what produced those results (data files, not
edited here): they are skipped with that reason unless they carry a marker of their own.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import SHARED_ROOT

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
FENCE = re.compile(r"(?:<!-- readme-test: (?P<marker>[^>]*?) -->\n)?^```(?P<lang>[a-z]*)\n(?P<body>.*?)^```",
                   re.S | re.M)
EXIT = re.compile(r"#\s*exit status (\d+)")
# Folders whose blocks record how a committed result was made (hours of work) and are not ours to mark.
RECORDS = {"docs/reproductions/": "skip: a record of the command that produced this committed reproduction"}


def example_files() -> list[Path]:
    """README.md, then every Markdown page of docs/ sorted by path (the order examples run in)."""
    return [README, *sorted(DOCS.rglob("*.md"))]


@dataclass
class Block:
    file: str  # relative to the repository root
    line: int
    lang: str
    marker: str
    body: str

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}:{self.lang}"


def file_blocks(path: Path) -> list[Block]:
    """The ```bash and ```python blocks of one Markdown file, with their markers."""
    rel = path.relative_to(ROOT).as_posix()
    default = next((marker for folder, marker in RECORDS.items() if rel.startswith(folder)), "")
    text = path.read_text(encoding="utf-8")
    return [Block(rel, text.count("\n", 0, m.start("body")) + 1, m["lang"], (m["marker"] or default).strip(),
                  m["body"])
            for m in FENCE.finditer(text) if m["lang"] in ("bash", "python")]


def example_blocks() -> list[Block]:
    """Every example block of README.md and docs/, in run order."""
    return [block for path in example_files() for block in file_blocks(path)]


BLOCKS = example_blocks()


def commands(body: str) -> list[tuple[int, str, int]]:
    """``(line offset, command, expected exit status)`` of a bash block: comment-only and blank
    lines dropped, continued lines joined."""
    out, pending, start = [], "", 0
    for i, raw in enumerate(body.splitlines()):
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if not pending:
            start = i
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        cmd = pending + line
        pending = ""
        status = EXIT.search(cmd)
        out.append((start, cmd, int(status.group(1)) if status else 0))
    return out


def shell_script(block: Block) -> str:
    lines = []
    for offset, cmd, expected in commands(block.body):
        shown = cmd.replace("'", "")[:160]
        where = f"{block.file}:{block.line + offset}"
        check = f"__rc=$?; if [ \"$__rc\" != \"{expected}\" ]; then"
        message = f"'{where}: exit status '$__rc' (expected {expected}): {shown}'"
        lines += [cmd, f"{check} echo {message} >&2; exit 97; fi"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """A scratch checkout: copies of model_zoo/ and leaderboards/ (examples write there), ``.venv``
    linked to this environment, ``../shared`` linked to the shared folder when there is one."""
    base = tmp_path_factory.mktemp("examples")
    repo = base / "rb-crossclass"
    repo.mkdir()
    for folder in ("model_zoo", "leaderboards"):
        shutil.copytree(ROOT / folder, repo / folder)
    (repo / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    if SHARED_ROOT is not None:
        (base / "shared").symlink_to(SHARED_ROOT, target_is_directory=True)
    env = {k: v for k, v in os.environ.items()
           if k not in ("RB_CROSSCLASS_ZOO", "RB_CROSSCLASS_SHARED", "PYTHONPATH", "RB_CROSSCLASS_DATA")}
    env.update(PATH=f"{Path(sys.prefix) / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=sys.prefix,
               RB_CROSSCLASS_CACHE=str(base / "cache"), PYTHONWARNINGS="ignore", MPLBACKEND="Agg")
    return repo, env


def test_every_example_block_is_run_or_says_why_not():
    assert len(BLOCKS) >= 15, "README.md and docs/ lost their examples?"
    assert any(b.file == "README.md" and not b.marker for b in BLOCKS), "the README runs no example"
    for block in BLOCKS:
        assert block.marker in ("", "needs-shared") or re.fullmatch(r"skip: .{10,}", block.marker), (
            f"{block.id}: unknown marker {block.marker!r} (use 'needs-shared' or 'skip: <reason>')")
    run = [b for b in BLOCKS if not b.marker.startswith("skip")]
    assert len(run) >= 10 and any(b.lang == "python" for b in run)
    for path in example_files():
        text = path.read_text(encoding="utf-8")
        assert "install-alias" not in text and "import_robustbench" not in text, path


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_example_runs_as_written(block, checkout):
    if block.marker.startswith("skip"):
        pytest.skip(block.marker)
    if block.marker == "needs-shared" and SHARED_ROOT is None:
        pytest.skip("needs ../shared (real data beside the checkout)")
    repo, env = checkout
    if block.lang == "bash":
        cmd = ["bash", "-c", shell_script(block)]
    else:
        script = repo / f"example_{block.file.replace('/', '_').removesuffix('.md')}_{block.line}.py"
        script.write_text(block.body)
        cmd = [sys.executable, str(script)]
    out = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, f"{block.id} failed:\n{out.stdout[-3000:]}\n{out.stderr[-4000:]}"
