"""rb-crossclass: cross-class feature tooling for RobustBench.

The main entry points, as timm exports ``create_model`` (each one resolves on first use, so
``import rb_crossclass`` stays cheap: no torch until a function is asked for):

- scoring: :func:`score_model`, :func:`score_examples` (tensors in),
  :func:`score_source` (names in, ``crossclass.json`` out), :class:`ComputeSettings`,
  :func:`crossclass_record`;
- evaluation: :func:`evaluate_model`, :func:`evaluate_source` (AutoAttack + CAS + card);
- models: :func:`create_model_source`, :class:`ModelSpec`, :func:`build_model_for_data`,
  :func:`reconcile_classes`;
- cards: :func:`load_card`, :func:`write_card`, :func:`card_table`, :func:`official_base_card`,
  :func:`fetch_official_card`;
- training, sweeps, boards, the demo: :func:`train`, :func:`run_sweep`,
  :func:`build_leaderboard`, :func:`run_demo`.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "ComputeSettings": "crossclass",
    "score_model": "crossclass",
    "score_examples": "crossclass",
    "score_source": "crossclass",
    "crossclass_record": "crossclass",
    "evaluate_model": "evaluate",
    "evaluate_source": "evaluate",
    "create_model_source": "models",
    "ModelSpec": "models",
    "build_model_for_data": "models",
    "reconcile_classes": "models",
    "load_card": "cards",
    "write_card": "cards",
    "card_table": "cards",
    "official_base_card": "cards",
    "fetch_official_card": "cards",
    "train": "train",
    "run_sweep": "sweep",
    "build_leaderboard": "leaderboard",
    "run_demo": "demo",
}
"""Each exported name and the subpackage (or module) of ``rb_crossclass`` that defines it."""

__all__ = [  # the names of _EXPORTS, spelled out for linters and type checkers
    "__version__",
    "ComputeSettings", "score_model", "score_examples", "score_source", "crossclass_record",
    "evaluate_model", "evaluate_source",
    "create_model_source", "ModelSpec", "build_model_for_data", "reconcile_classes",
    "load_card", "write_card", "card_table", "official_base_card", "fetch_official_card",
    "train", "run_sweep", "build_leaderboard", "run_demo",
]

if TYPE_CHECKING:
    from .cards import card_table, fetch_official_card, load_card, official_base_card, write_card
    from .crossclass import ComputeSettings, crossclass_record, score_examples, score_model, score_source
    from .demo import run_demo
    from .evaluate import evaluate_model, evaluate_source
    from .leaderboard import build_leaderboard
    from .models import ModelSpec, build_model_for_data, create_model_source, reconcile_classes
    from .sweep import run_sweep
    from .train import train


def __getattr__(name: str) -> Any:
    """PEP 562: import the subpackage of an exported ``name`` on first use; raises
    :class:`AttributeError` for any other name."""
    home = _EXPORTS.get(name)
    if home is None:
        raise AttributeError(f"module 'rb_crossclass' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


_SHADOWED = frozenset(name for name, home in _EXPORTS.items() if name == home)
"""Exported functions named like the subpackage that defines them (``train``)."""


class _Package(types.ModuleType):
    """``rb_crossclass`` itself: importing the subpackage ``rb_crossclass.train`` (which Python
    binds as an attribute of its parent) never replaces the exported function ``train``; the
    subpackage stays reachable as ``sys.modules["rb_crossclass.train"]`` and by
    ``from rb_crossclass.train import ...``."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
