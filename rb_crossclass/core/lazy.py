"""Lazy package exports (PEP 562): a package names what it exports and from which submodule; the
submodule is imported on first access, so importing the package itself costs nothing.

Used by every subpackage ``__init__.py`` so that ``rb-crossclass --help`` (and ``from
rb_crossclass.evaluate import VERSIONS``) import only the modules they need, not torch. A package
writes its exports once, as ordinary imports under ``if TYPE_CHECKING:`` (what type checkers, IDEs
and the API reference read), and calls ``lazy_exports(__name__)``, which reads that block from
the package's source and serves each name on first access::

    from typing import TYPE_CHECKING

    from ..core.lazy import lazy_exports

    if TYPE_CHECKING:
        from .protocol import VERSIONS

    lazy_exports(__name__)
"""

from __future__ import annotations

import ast
import importlib
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class _LazyPackage(types.ModuleType):
    """A package module whose exported names win over same-named submodules.

    Importing a submodule binds it as an attribute of its package (e.g. ``reproduce.aggregate``,
    the module); when the package exports a function of that name from that module, the function
    is bound instead, as an eager ``from .aggregate import aggregate`` would leave it.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        exports: Mapping[str, str] = self.__dict__.get("_lazy_exports", {})
        if (isinstance(value, types.ModuleType) and name in exports
                and value.__name__ == f"{self.__name__}{exports[name]}" and hasattr(value, name)):
            value = getattr(value, name)
        super().__setattr__(name, value)


def type_checking_imports(path: str | Path) -> dict[str, str]:
    """``{name: module}`` of the ``from MODULE import NAME`` statements inside the top-level
    ``if TYPE_CHECKING:`` blocks of the Python file ``path`` (``MODULE`` as written, e.g.
    ``".protocol"``). ``import X as Y`` aliases and star imports raise :class:`ValueError`."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), str(path))
    found: dict[str, str] = {}
    for node in tree.body:
        if not (isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"):
            continue
        for stmt in node.body:
            if not isinstance(stmt, ast.ImportFrom) or any(a.name == "*" or a.asname for a in stmt.names):
                raise ValueError(f"{path}:{stmt.lineno}: only 'from MODULE import NAME' under TYPE_CHECKING")
            for alias in stmt.names:
                found[alias.name] = "." * stmt.level + (stmt.module or "")
    return found


def lazy_exports(package: str, exports: Mapping[str, str] | None = None) -> None:
    """Make ``package`` (its ``__name__``) export names lazily.

    ``exports`` maps a public name to the module holding it, relative to ``package`` (``".protocol"``,
    ``"..core.datasets"``); ``None`` (the usual call): the imports under the package's
    ``if TYPE_CHECKING:`` (:func:`type_checking_imports`). Sets ``__all__`` (sorted, when the
    package defines none), a module-level ``__getattr__`` importing the module on first access and
    caching the value, and ``__dir__``. An unknown name raises :class:`AttributeError` as for any
    module.
    """
    module = sys.modules[package]
    if exports is None:
        exports = type_checking_imports(module.__file__)
    module.__class__ = _LazyPackage
    exports = dict(exports)
    module.__dict__["_lazy_exports"] = exports

    def __getattr__(name: str) -> Any:
        where = exports.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where, package), name)
        module.__dict__[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(module.__dict__) | set(exports))

    module.__dict__["__getattr__"] = __getattr__
    module.__dict__["__dir__"] = __dir__
    module.__dict__.setdefault("__all__", sorted(exports))


def import_submodules(package: str, exclude: tuple[str, ...] = (), prefix: str = "") -> list[str]:
    """Import every module directly inside ``package`` (a dotted name) except ``exclude`` (with
    ``prefix``: only those whose name starts with it), in name order, so that the decorators in
    them register their entries (recipes, model sources, sweep engines; see
    :class:`~rb_crossclass.core.registry.Registry`): a new entry is one new module, with no list
    to edit. Returns the imported modules' full names. Modules whose name starts with ``_`` are
    skipped. An import error of a module propagates (a broken plugin module is a bug to see, not
    to hide)."""
    import pkgutil

    pkg = importlib.import_module(package)
    names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__)
                   if not m.name.startswith("_") and m.name not in exclude
                   and m.name.startswith(prefix))
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return [f"{package}.{name}" for name in names]
