"""The start-up hook's module: ``import autoattack`` falls back to pyautoattack.

robustbench 1.1.1 imports ``autoattack``, but its dependency installs ``pyautoattack``. The wheel
carries ``rb_crossclass_autoattack_alias.pth`` at its root (``pyproject.toml``, force-include);
Python runs its one line in every interpreter of the environment::

    import rb_crossclass._autoattack_alias as a; a.install()

That line must stay cheap and must never break an interpreter, so this module imports nothing but
``sys`` and does no search at start-up: :func:`install` only appends :class:`AutoattackAlias` to
the *end* of ``sys.meta_path``. A genuine ``autoattack`` package (the original GitHub one) is found
by the ordinary path finder first and wins; only when no ``autoattack`` module is importable does
the alias answer, and only when ``pyautoattack`` is installed (otherwise the usual
``ModuleNotFoundError``). :func:`rb_crossclass.compat.install_autoattack_alias` is the checked
version for code (a clear error when pyautoattack is missing).
"""

import sys


class AutoattackAlias:
    """Meta-path finder and loader: ``autoattack[.sub]`` is the module ``pyautoattack[.sub]``."""

    @staticmethod
    def find_spec(fullname, path=None, target=None):  # noqa: ARG004 - meta-path finder API
        if fullname != "autoattack" and not fullname.startswith("autoattack."):
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
        sys.modules[spec.name] = real
        return real

    @staticmethod
    def exec_module(module) -> None:  # the real module is already executed
        return None


def install() -> None:
    """Append the alias finder to ``sys.meta_path`` (once); never raises."""
    if AutoattackAlias not in sys.meta_path:
        sys.meta_path.append(AutoattackAlias)
