"""The start-up hook's module: ``import autoattack`` falls back to pyautoattack.

robustbench 1.1.1 imports ``autoattack``, but its dependency installs ``pyautoattack``. The wheel
carries ``rb_crossclass_autoattack_alias.pth`` at its root (``pyproject.toml``, force-include);
Python runs its one line in every interpreter of the environment::

    import rb_crossclass._autoattack_alias as a; a.install()

That line must stay cheap and must never break an interpreter, so this module imports nothing but
``sys`` and does no search at start-up: :func:`install` only puts :class:`AutoattackAlias` on
``sys.meta_path``. The finder answers for ``autoattack`` only when no other finder can (a genuine
``autoattack`` package, the original GitHub one, wins) and pyautoattack is installed (otherwise
the usual ``ModuleNotFoundError``); then ``autoattack`` *is* the module ``pyautoattack`` and
``autoattack.<sub>`` *is* ``pyautoattack.<sub>`` (one module object each, never a second copy
loaded from the same file). :func:`rb_crossclass.compat.install_autoattack_alias` is the checked
version for code (a clear error when pyautoattack is missing).
"""

import sys


def _found_elsewhere(name):
    for finder in list(sys.meta_path):
        find = getattr(finder, "find_spec", None)
        if finder is AutoattackAlias or find is None:
            continue
        try:
            if find(name, None) is not None:
                return True
        except Exception:  # noqa: BLE001, S112 - another finder's failure is not our answer
            continue
    return False


class AutoattackAlias:
    """Meta-path finder and loader: ``autoattack[.sub]`` is the module ``pyautoattack[.sub]``."""

    @staticmethod
    def find_spec(fullname, path=None, target=None):  # noqa: ARG004 - meta-path finder API
        if fullname == "autoattack":
            if _found_elsewhere(fullname):
                return None
        elif fullname.startswith("autoattack."):
            parent = sys.modules.get("autoattack")
            if parent is None or parent is not sys.modules.get("pyautoattack"):
                return None  # a genuine autoattack: its submodules are its own
        else:
            return None
        from importlib.util import find_spec, spec_from_loader

        try:
            real = find_spec("py" + fullname)
        except (ImportError, ValueError):
            return None
        return None if real is None else spec_from_loader(fullname, AutoattackAlias)

    @staticmethod
    def create_module(spec):
        from importlib import import_module

        real = import_module("py" + spec.name)
        spec.loader_state = real.__spec__  # the import system overwrites __spec__ with ours next
        sys.modules[spec.name] = real
        return real

    @staticmethod
    def exec_module(module) -> None:
        """The real module is already executed; give it back its own spec (so that e.g.
        ``importlib.resources.files("pyautoattack")`` keeps working after ``import autoattack``)."""
        alias = getattr(module, "__spec__", None)
        if alias is not None and alias.loader is AutoattackAlias and alias.loader_state is not None:
            module.__spec__ = alias.loader_state


def install() -> None:
    """Put the alias finder first on ``sys.meta_path`` (once); never raises. First, because the
    submodules of an aliased ``autoattack`` must come from it, not from the path finder reading
    pyautoattack's files a second time; it defers to every other finder for ``autoattack`` itself."""
    if AutoattackAlias not in sys.meta_path:
        sys.meta_path.insert(0, AutoattackAlias)
