"""The floor plan of docs/ARCHITECTURE.md, checked on the code: imports only go down (or stay in a
floor) and no package imports another that imports it back."""

from __future__ import annotations

import ast
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
