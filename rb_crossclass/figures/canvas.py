"""One figure style for every plot: matplotlib's object API on an Agg canvas (no pyplot state, no
global backend switch in the caller's process), saved atomically as PNG, PDF or SVG.

:class:`FigureStyle` carries the output ``format`` and ``dpi`` a user picks (``--format``,
``--dpi``); each plot has its own default size and resolution. Files carry no creation date or
software stamp, so the same data gives the same bytes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import RBCrossclassError
from ..core.io import atomic_write

FORMATS = ("png", "pdf", "svg")
_NO_STAMP = {"png": {"Software": None}, "pdf": {"CreationDate": None, "Producer": None, "Creator": None},
             "svg": {"Date": None, "Creator": None}}


class FigureError(RBCrossclassError, ValueError):
    """Bad figure settings (format, dpi)."""


@dataclass(frozen=True)
class FigureStyle:
    """Output ``format`` (png, pdf or svg) and ``dpi`` (``None``: each plot's own default)."""

    format: str = "png"
    dpi: int | None = None

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise FigureError(f"figure format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.dpi is not None and (isinstance(self.dpi, bool) or not 20 <= self.dpi <= 1200):
            raise FigureError(f"dpi must be between 20 and 1200, got {self.dpi!r}")


DEFAULT_STYLE = FigureStyle()


def new_figure(figsize: tuple[float, float], dpi: int = 100):
    """A matplotlib ``Figure`` with its own Agg canvas (pyplot is never touched)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def epoch_axis(axis) -> None:
    """Integer ticks on an epoch axis (a matplotlib ``Axis``, e.g. ``ax.xaxis``), also when the
    history has one epoch: ``min_n_ticks=1`` keeps integer ticks where the view holds a single
    integer (MaxNLocator's default falls back to ticks such as 0.945, 0.960, ... then)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def plain_text(text: object) -> str:
    """``text`` shown literally by matplotlib: every ``$`` escaped, so no pair of them starts
    mathtext (``$x^{$`` in a model ID would crash the drawing); backslashes, ``^``, ``_``, ``{``
    outside mathtext are drawn as they are. Every text that comes from data (model IDs, titles,
    class names, attack and recipe names) goes through this one helper before it is drawn."""
    return str(text).replace("$", r"\$")


MAX_PIXELS = 25_000_000  # ~100 MB of RGBA while drawing, whatever the figure size and --dpi


def bounded_dpi(figsize: tuple[float, float], dpi: int) -> int:
    """``dpi``, lowered so that a figure of ``figsize`` inches has at most :data:`MAX_PIXELS`."""
    w, h = figsize
    return max(1, min(int(dpi), int((MAX_PIXELS / max(w * h, 1e-9)) ** 0.5)))


def save_figure(fig, path: str | os.PathLike, style: FigureStyle | None = None,
                default_dpi: int = 100) -> Path:
    """Write ``fig`` atomically to ``path`` with the style's suffix (``x.png`` → ``x.pdf`` for
    PDF); returns the path written. The resolution is lowered where the image would exceed
    :data:`MAX_PIXELS` (a large figure at a high ``--dpi``)."""
    style = style or DEFAULT_STYLE
    out = Path(path).with_suffix("." + style.format)
    dpi = bounded_dpi(tuple(fig.get_size_inches()), style.dpi or default_dpi)
    atomic_write(out, lambda tmp: _save_without_tex(fig, tmp, style.format, dpi))
    return out


def _save_without_tex(fig, tmp: str, fmt: str, dpi: int) -> None:
    """``fig.savefig`` with LaTeX off for every text (a ``text.usetex: True`` in the user's
    matplotlibrc would send model IDs with ``_``, ``^``, ``{`` to LaTeX, and need it installed);
    tick labels made while drawing read the setting, hence the context."""
    import matplotlib
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        text.set_usetex(False)
    with matplotlib.rc_context({"text.usetex": False}):
        fig.savefig(tmp, format=fmt, dpi=dpi, metadata=_NO_STAMP[fmt])
