"""Progress bars: the one rule for how progress is shown.

:func:`progress_bar` is what every stage uses instead of ``tqdm`` directly:

- disabled (``disable=True``): nothing is shown;
- stderr is a terminal: an animated ``tqdm`` bar;
- stderr is not a terminal (a log file, a pipe, a batch job): no animation, so no carriage returns
  or cursor-movement escapes (``ESC[A``) end up in the log; instead a plain line
  ``desc: n/total unit (p%)`` at most every :data:`LOG_EVERY_SECONDS` seconds and one when the
  bar closes.

Both kinds take the same calls (``update``, ``set_postfix``, ``set_postfix_str``, ``write``,
``close``, iteration, ``with``).

One style for every bar of the package: the description padded to :data:`DESC_WIDTH` characters
(stacked bars line up), the width following the terminal (``dynamic_ncols``), a unit naming what
is counted (``img``, ``batch``, ``model``, ...), and ``leave=False`` for bars nested in another
(they vanish when done). Only this module imports ``tqdm`` (a test checks it).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

LOG_EVERY_SECONDS = float(os.environ.get("RB_CROSSCLASS_PROGRESS_SECONDS", "30"))
DESC_WIDTH = 12  # "epoch 10/200", "apgd-ce", "models": one column for stacked bars


def stderr_is_terminal() -> bool:
    """Whether progress may be animated: stderr is a TTY."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def progress_bar(iterable: Iterable | None = None, *, total: int | float | None = None, desc: str = "",
                 unit: str = "it", disable: bool = False, leave: bool = True, initial: int = 0,
                 **tqdm_kwargs: Any):
    """A progress bar following the module's rule and style: over ``iterable`` (or updated by hand
    up to ``total``), ``desc`` padded to :data:`DESC_WIDTH`, counting ``unit``; nothing when
    ``disable`` (callers pass ``disable=not progress``). ``tqdm_kwargs`` reach tqdm on a terminal
    (``dynamic_ncols`` is on unless given)."""
    if disable or stderr_is_terminal():
        from tqdm.auto import tqdm

        tqdm_kwargs.setdefault("dynamic_ncols", True)
        return tqdm(iterable, total=total, desc=desc.ljust(DESC_WIDTH) if desc else desc, unit=unit,
                    disable=disable, leave=leave, initial=initial, **tqdm_kwargs)
    return PlainProgress(iterable, total=total, desc=desc, unit=unit, leave=leave, initial=initial)


class PlainProgress:
    """Progress as plain lines on stderr (see the module docstring)."""

    def __init__(self, iterable: Iterable | None = None, *, total: int | float | None = None,
                 desc: str = "", unit: str = "it", leave: bool = True, initial: int = 0,
                 every: float | None = None) -> None:
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc.strip(), unit
        self.n, self.postfix, self.leave = initial, "", leave
        self.every = LOG_EVERY_SECONDS if every is None else every
        self._last = time.monotonic()
        self._closed = False

    def __iter__(self) -> Iterator:
        for item in self.iterable or ():
            yield item
            self.update(1)
        self.close()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def line(self) -> str:
        """The progress as one plain line."""
        done = f"{self.n:g}" + (f"/{self.total:g}" if self.total else "")
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        post = f", {self.postfix}" if self.postfix else ""
        return f"{self.desc + ': ' if self.desc else ''}{done} {self.unit}{pct}{post}"

    def _emit(self) -> None:
        print(self.line(), file=sys.stderr, flush=True)
        self._last = time.monotonic()

    def update(self, n: int | float = 1) -> None:
        self.n += n
        if time.monotonic() - self._last >= self.every:
            self._emit()

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **kwargs: Any) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = (desc or "").strip()

    def write(self, s: str, file: Any = None, end: str = "\n") -> None:
        print(s, file=file or sys.stdout, end=end, flush=True)

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self.leave:
                self._emit()
