"""Heatmaps of K×K class attribution matrices.

:func:`plot_attribution_matrix` draws ``C`` with class names on both axes and the values
written in the cells (K ≤ 20), like the figures of Wei, Guo & Wang (ICML 2025);
:func:`plot_matrix_difference` draws ``A − B`` (e.g. best minus last checkpoint) on a symmetric
diverging scale. Undefined cells (classes without samples, NaN/None) are shown grey and
marked with :data:`~rb_crossclass.core.formatting.MISSING` (—). The image size in pixels is
:func:`heatmap_size_px` ``(K)``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..core.formatting import format_number
from .canvas import FigureStyle, bounded_dpi, new_figure, plain_text, save_figure

DPI = 100
ANNOTATE_MAX_K = 20


def _as_array(matrix) -> np.ndarray:
    if hasattr(matrix, "tolist"):
        matrix = matrix.tolist()
    rows = [[math.nan if v is None else float(v) for v in row] for row in matrix]
    a = np.asarray(rows, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"need a square matrix, got shape {a.shape}")
    return a


MAX_SIDE_IN = 12.0  # the matrix's side in inches, whatever K: K = 1000 was 120 in (12,000 px, 4 GB)


def _figsize(k: int) -> tuple[float, float]:
    cell = 0.6 if k <= ANNOTATE_MAX_K else max(0.12, 8.0 / k)
    side = min(MAX_SIDE_IN, max(3.0, cell * k))
    return round(side + 2.6, 1), round(side + 1.8, 1)


def heatmap_size_px(k: int, dpi: int = DPI) -> tuple[int, int]:
    """``(width, height)`` in pixels of the PNG drawn for a K×K matrix (at most
    ``(MAX_SIDE_IN + 2.6) × (MAX_SIDE_IN + 1.8)`` inches at ``dpi``, within ``MAX_PIXELS``)."""
    w, h = _figsize(k)
    dpi = bounded_dpi((w, h), dpi)
    return round(w * dpi), round(h * dpi)


def _labels(k: int, class_names: Sequence[str] | None) -> list[str]:
    names = [plain_text(n) for n in class_names] if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} class names for a {k}x{k} matrix")
    return names


def _draw(a: np.ndarray, names: list[str], path: str | os.PathLike, title: str, *, vmin: float,
          vmax: float, cmap: str, colorbar_label: str, fmt: str, style: FigureStyle | None) -> Path:
    from matplotlib.colors import TwoSlopeNorm

    k = a.shape[0]
    fig = new_figure(_figsize(k), dpi=DPI)
    ax = fig.add_axes((0.2, 0.17, 0.62, 0.72))
    cax = fig.add_axes((0.85, 0.17, 0.03, 0.72))
    masked = np.ma.masked_invalid(a)
    import matplotlib

    colormap = matplotlib.colormaps[cmap].with_extremes(bad="#c8c8c8")
    norm = TwoSlopeNorm(vcenter=0.0, vmin=vmin, vmax=vmax)
    im = ax.imshow(masked, cmap=colormap, norm=norm, interpolation="nearest", aspect="equal")
    cb = fig.colorbar(im, cax=cax)
    cb.set_label(colorbar_label)
    step = 1 if k <= 30 else math.ceil(k / 30)
    ticks = list(range(0, k, step))
    fontsize = 9 if k <= 12 else 7
    ax.set_xticks(ticks, [names[i] for i in ticks], rotation=45, ha="right", rotation_mode="anchor",
                  fontsize=fontsize)
    ax.set_yticks(ticks, [names[i] for i in ticks], fontsize=fontsize)
    ax.set_title(plain_text(title), fontsize=10 if len(title) <= 60 else 8)
    if k <= ANNOTATE_MAX_K:
        span = max(abs(vmin), abs(vmax)) or 1.0
        for i in range(k):
            for j in range(k):
                v = a[i, j]
                text = format_number(float(v), fmt)
                dark = not math.isnan(v) and abs(v) > 0.6 * span
                ax.text(j, i, text, ha="center", va="center", fontsize=fontsize - 1,
                        color="white" if dark else "black")
    return save_figure(fig, path, style, default_dpi=DPI)


def plot_attribution_matrix(matrix, class_names: Sequence[str] | None, path: str | os.PathLike,
                            title: str = "class attribution correlation",
                            style: FigureStyle | None = None) -> Path:
    """Save a heatmap of ``matrix`` (K×K cosines in [-1,1]; None/NaN = undefined) to ``path``
    (PNG unless ``style`` says otherwise); returns the path written."""
    a = _as_array(matrix)
    return _draw(a, _labels(a.shape[0], class_names), path, title, vmin=-1.0, vmax=1.0,
                 cmap="RdBu_r", colorbar_label="cosine similarity", fmt=".2f", style=style)


def plot_matrix_difference(matrix, other, class_names: Sequence[str] | None,
                           path: str | os.PathLike, title: str = "difference (this − other)",
                           style: FigureStyle | None = None) -> Path:
    """Save a heatmap of ``matrix − other`` (both K×K) to ``path``, symmetric colour scale."""
    a, b = _as_array(matrix), _as_array(other)
    if a.shape != b.shape:
        raise ValueError(f"cannot subtract a {b.shape[0]}-class matrix from a {a.shape[0]}-class one")
    diff = a - b
    finite = diff[np.isfinite(diff)]
    span = float(np.abs(finite).max()) if finite.size else 1.0
    span = span if span > 0 else 1.0
    return _draw(diff, _labels(a.shape[0], class_names), path, title, vmin=-span, vmax=span,
                 cmap="PuOr_r", colorbar_label="difference of cosines", fmt="+.2f", style=style)
