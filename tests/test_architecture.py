"""The floor plan of docs/ARCHITECTURE.md, checked on the code: imports only go down (or stay in a
floor) and no package imports another that imports it back."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "rb_crossclass"
FLOORS = {
    "core": 0,
    "data": 1, "models": 1, "attacks": 1, "figures": 1, "compat": 1, "_autoattack_alias": 1,
    "recipes": 2, "crossclass": 2, "cards": 2,
    "train": 3, "evaluate": 3, "leaderboard": 3, "zoo": 3, "synthetic": 3, "scoring": 3,
    "sweep": 4, "demo": 4, "reproduce": 4,
    "commands": 5, "cli": 5, "__main__": 5, "__init__": 5,
}


def _room(module: str) -> str:
    """``rb_crossclass.models.sources.timm`` -> ``models``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports() -> list[tuple[str, str]]:
    edges = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    target = ".".join([*base, node.module] if node.module else base)
                else:
                    target = node.module or ""
                targets = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for t in targets:
                if t.startswith("rb_crossclass.") and t.count(".") >= 1:
                    edges.append((module, t))
    return edges


def test_imports_never_go_up_a_floor():
    rooms = {p.name if p.is_dir() else p.stem for p in PACKAGE.iterdir()
             if (p.is_dir() and (p / "__init__.py").exists()) or p.suffix == ".py"}
    assert rooms <= set(FLOORS), f"new package(s) without a floor: {sorted(rooms - set(FLOORS))}"
    up = [(a, b) for a, b in _imports()
          if _room(b) in FLOORS and FLOORS[_room(b)] > FLOORS[_room(a)]]
    assert not up, f"imports that go up a floor: {up}"


def test_no_import_circle_between_packages():
    graph: dict[str, set[str]] = {}
    for a, b in _imports():
        ra, rb = _room(a), _room(b)
        if ra != rb and rb in FLOORS:
            graph.setdefault(ra, set()).add(rb)

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    circles = sorted(r for r in graph if r in reach(r))
    assert not circles, f"packages on an import circle: {circles}"


# --------------------------------------------------------------------------- commands only parse and print
COMMANDS = PACKAGE / "commands"
HEAVY = {"torch", "numpy", "timm", "robustbench", "ray", "matplotlib", "torchvision", "torchattacks",
         "autoattack", "pyautoattack", "scipy", "PIL", "safetensors", "jsonschema", "nh3", "jinja2", "yaml"}
COMMANDS_MAX_LINES = 1000


def _subpackages() -> set[str]:
    """Rooms of rb_crossclass one may import from: subpackages and top-level modules (``demo``)."""
    return {p.name if p.is_dir() else p.stem for p in PACKAGE.iterdir()
            if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.stem != "__init__")}


def _command_import_problems(source: str, filename: str) -> list[str]:
    """Imports of one commands/ module that break the rule: (a) the standard library, (b)
    ``rb_crossclass.commands.common``, (c) public names of ``rb_crossclass`` or of one of its
    subpackages' ``__init__`` (never a deep module, never torch/numpy/...), at module level or in
    functions alike."""
    rooms = _subpackages()
    problems = []
    tree = ast.parse(source)
    where = f"rb_crossclass/commands/{filename}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in HEAVY or top not in sys.stdlib_module_names:
                    problems.append(f"{where}:{node.lineno}: import {alias.name}")
            continue
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = ["rb_crossclass", "commands"][: 2 - node.level + 1]
            target = ".".join([*base, node.module] if node.module else base)
        else:
            target = node.module or ""
        names = [a.name for a in node.names]
        top = target.split(".")[0]
        private = [n for n in names if n.startswith("_")]
        if top != "rb_crossclass":
            if top in HEAVY or (top not in sys.stdlib_module_names and top != "__future__"):
                problems.append(f"{where}:{node.lineno}: from {target} import {', '.join(names)}")
            continue
        parts = target.split(".")
        ok = (
            target == "rb_crossclass.commands.common"
            or (target == "rb_crossclass.commands" and names == ["common"])
            or (target == "rb_crossclass" and all(n in rooms or not n.startswith("_") for n in names))
            or (len(parts) == 2 and parts[1] in rooms and parts[1] != "commands")
        )
        if not ok or private:
            problems.append(f"{where}:{node.lineno}: from {target} import {', '.join(names)}")
    return problems


def test_commands_import_only_the_package_public_functions_and_common():
    problems = [p for path in sorted(COMMANDS.glob("*.py"))
                for p in _command_import_problems(path.read_text(encoding="utf-8"), path.name)]
    assert not problems, "commands/ must only parse, call the package's public functions and print:\n" + \
        "\n".join(problems)


def test_the_command_import_rule_catches_deep_heavy_and_private_imports():
    source = ("import json\nimport torch\nfrom ..sweep.worker import run_job\n"
              "from ..crossclass import _private\nfrom ..models import ModelSpec\n"
              "from .common import positive_int\nfrom .. import score_model\ndef f():\n    import numpy\n"
              "    from ..models.fit import ModelSpec\n    from ..core.threat import NORMS\n")
    problems = _command_import_problems(source, "probe.py")
    assert [p.split(":")[1] for p in problems] == ["2", "3", "4", "9", "10", "11"], problems
    assert len(_command_import_problems("from ..core.threat import NORMS\n", "common.py")) == 1


def test_commands_stay_small():
    total = sum(len(p.read_text(encoding="utf-8").splitlines()) for p in COMMANDS.glob("*.py"))
    assert total < COMMANDS_MAX_LINES, f"commands/ holds {total} lines (at most {COMMANDS_MAX_LINES - 1})"
