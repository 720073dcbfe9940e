"""Per-class bars of one model: clean and robust accuracy of every class, with 95 % intervals."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .canvas import FigureStyle, new_figure, plain_text, save_figure

MAX_CLASSES_DRAWN = 100  # more classes: the worst and best 50 by robust accuracy


def plot_per_class(class_names: Sequence[str], clean: Sequence[float | None],
                   robust: Sequence[float | None], path: str | os.PathLike, *,
                   robust_interval: Sequence[Sequence[float] | None] | None = None,
                   robust_label: str = "robust", title: str = "", style: FigureStyle | None = None) -> Path:
    """Grouped bars per class: ``clean`` and ``robust`` accuracy in percent (``None``: no point of
    that class), ``robust_interval``: per-class 95 % intervals in percent drawn as error bars. The
    figure's width grows with the classes up to :data:`MAX_CLASSES_DRAWN` (beyond that the 50
    worst and 50 best classes by robust accuracy are drawn and the title says so), so its size
    stays bounded whatever K."""
    idx = list(range(len(class_names)))
    note = ""
    if len(idx) > MAX_CLASSES_DRAWN:
        ranked = sorted((i for i in idx if robust[i] is not None), key=lambda i: robust[i])
        idx = sorted(set(ranked[:MAX_CLASSES_DRAWN // 2] + ranked[-MAX_CLASSES_DRAWN // 2:]))
        note = f" ({len(idx)} of {len(class_names)} classes: the worst and best by {robust_label} accuracy)"
    width = min(15.0, max(5.0, 0.45 * len(idx) + 1.5))  # at most 1,500 px wide at the default dpi
    fig = new_figure((width, 3.6), dpi=100)
    ax = fig.subplots()
    xs = list(range(len(idx)))
    clean_v = [clean[i] if clean[i] is not None else 0.0 for i in idx]
    robust_v = [robust[i] if robust[i] is not None else 0.0 for i in idx]
    ax.bar([x - 0.2 for x in xs], clean_v, width=0.4, color="tab:gray", label="clean")
    yerr = None
    if robust_interval is not None:
        below, above = [], []
        for i, v in zip(idx, robust_v, strict=True):
            iv = robust_interval[i] if i < len(robust_interval) else None
            below.append(max(0.0, v - iv[0]) if iv else 0.0)
            above.append(max(0.0, iv[1] - v) if iv else 0.0)
        yerr = [below, above]
    ax.bar([x + 0.2 for x in xs], robust_v, width=0.4, color="tab:red", label=robust_label, yerr=yerr,
           error_kw={"elinewidth": 0.8, "capsize": 2})
    ax.set_xticks(xs)
    ax.set_xticklabels([plain_text(str(class_names[i]))[:16] for i in idx],
                       rotation=45 if len(idx) > 6 else 0, ha="right" if len(idx) > 6 else "center",
                       fontsize=7 if len(idx) > 20 else 8)
    ax.set_ylim(0, 118)  # room above 100 % for the legend
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("accuracy (%)", fontsize=9)
    ax.legend(fontsize=8, loc="upper right", ncol=2)
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_title(plain_text(title) + note + " (bars: 95 % intervals)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, style, default_dpi=100)
