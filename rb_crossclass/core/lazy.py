"""Lazy package exports (PEP 562): a package names what it exports and from which submodule; the
submodule is imported on first access, so importing the package itself costs nothing.

Used by every subpackage ``__init__.py`` so that ``rb-crossclass --help`` (and ``from
rb_crossclass.evaluate import VERSIONS``) import only the modules they need, not torch.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Mapping
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


def lazy_exports(package: str, exports: Mapping[str, str]) -> None:
    """Make ``package`` (its ``__name__``) export ``exports`` lazily.

    ``exports`` maps a public name to the module holding it, relative to ``package`` (``".protocol"``,
    ``"..core.datasets"``). Sets ``__all__`` (sorted, when the package defines none), a module-level
    ``__getattr__`` importing the module on first access and caching the value, and ``__dir__``.
    An unknown name raises :class:`AttributeError` as for any module.
    """
    module = sys.modules[package]
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


def import_submodules(package: str, exclude: tuple[str, ...] = ()) -> list[str]:
    """Import every module directly inside ``package`` (a dotted name) except ``exclude``, in
    name order, so that the decorators in them register their entries (recipes, model sources,
    sweep engines): a new entry is one new module, with no list to edit. Returns the imported
    modules' full names. Modules whose name starts with ``_`` are skipped. An import error of a
    module propagates (a broken plugin module is a bug to see, not to hide)."""
    import pkgutil

    pkg = importlib.import_module(package)
    names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__)
                   if not m.name.startswith("_") and m.name not in exclude)
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return [f"{package}.{name}" for name in names]
