"""Registries of named entries (model sources, recipes, sweep engines) filled by the modules of one
package: each entry is registered by a decorator in its own module, and the package's modules are
imported once, on first use (:func:`~rb_crossclass.core.lazy.import_submodules`), so a new entry is
one new module, with no list to edit and nothing imported before it is needed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from .lazy import import_submodules

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries by name, registered with :meth:`register`; :meth:`discover` first imports the
    modules of ``package`` (all but ``exclude``; with ``prefix``, only those whose name starts
    with it), once. :attr:`entries` keeps registration order; lookups that miss return ``None``
    so each caller raises its own error."""

    def __init__(self, package: str, *, exclude: tuple[str, ...] = (), prefix: str = "") -> None:
        self.package, self.exclude, self.prefix = package, exclude, prefix
        self.entries: dict[str, T] = {}
        self._discovered = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator storing its argument as the entry ``name`` (a later one of that name wins)."""

        def deco(entry: T) -> T:
            self.entries[name] = entry
            return entry

        return deco

    def discover(self) -> dict[str, T]:
        """:attr:`entries` after the package's modules were imported (the first call imports them)."""
        if not self._discovered:
            self._discovered = True
            import_submodules(self.package, exclude=self.exclude, prefix=self.prefix)
        return self.entries

    def get(self, name: str) -> T | None:
        """The entry ``name`` after discovery, ``None`` when there is none."""
        return self.discover().get(name)
