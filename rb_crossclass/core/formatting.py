"""Numbers as people read them: the one formatter and the one "missing" mark.

:func:`format_number` is how every table, board, log line and figure label writes a number;
:data:`MISSING` (an em dash, the mark the published leaderboards use) is what it writes for a
value that was not measured (``None``) or is not a number (NaN).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

MISSING = "—"


def is_missing(value: Any) -> bool:
    """Whether ``value`` is shown as :data:`MISSING`: ``None`` or a float NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_number(value: float | int | None, spec: str = ".2f", *, scale: float = 1.0) -> str:
    """``value * scale`` in Python's format ``spec`` (``".2f"``, ``".3g"``, ``",d"``, ...), or
    :data:`MISSING` when ``value`` is ``None`` or NaN.

    ``scale=100`` writes a fraction in [0, 1] as a percentage number (``0.5342`` → ``"53.42"``; no
    ``%`` sign is added). An integer with ``scale == 1`` is formatted as an integer (so ``",d"``
    works). Raises ``ValueError`` when ``spec`` does not fit the value (e.g. ``"d"`` for a float).
    """
    if is_missing(value):
        return MISSING
    if scale != 1.0:
        value = value * scale
    return format(value, spec)


def text_table(header: Sequence[str], rows: Iterable[Sequence[str]], sep: str = "  ") -> str:
    """An aligned plain-text table: ``header`` then ``rows`` (cells already strings), each column
    left-aligned to its widest cell, columns joined by ``sep``, trailing spaces stripped."""
    table = [tuple(header), *(tuple(r) for r in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join(sep.join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table)
