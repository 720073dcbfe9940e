"""Training dynamics: held-out robust accuracy and CAS per epoch, one panel per run, best epoch marked."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from .canvas import FigureStyle, new_figure, plain_text, save_figure


def plot_dynamics(runs: Sequence[dict], path: str | os.PathLike, *, title: str = "",
                  style: FigureStyle | None = None) -> Path:
    """``runs``: ``[{"name", "recipe", "eps", "epochs": [{"epoch", "robust_acc" (%), "cas"}]}]``;
    robust accuracy on the left axis, CAS on the right, the best epoch (highest robust accuracy)
    as a dotted line."""
    from matplotlib.ticker import MaxNLocator

    n = max(1, len(runs))
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = new_figure((4.6 * cols, 3.3 * rows), dpi=110)
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(ax for row in axes for ax in row):
        if i >= len(runs):
            ax.axis("off")
            continue
        run = runs[i]
        epochs = run["epochs"]
        ax.set_title(plain_text(f"{run['name']} ({run['recipe']}, ε {run['eps']})"), fontsize=9)
        if not epochs:
            ax.text(0.5, 0.5, "not evaluated yet", ha="center", va="center", transform=ax.transAxes)
            continue
        xs = [e["epoch"] for e in epochs]
        ax.plot(xs, [e["robust_acc"] for e in epochs], "s-", ms=3, color="tab:blue",
                label="held-out PGD robust acc")
        ax.set_xlabel("epoch", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("robust accuracy (%)", fontsize=8, color="tab:blue")
        right = ax.twinx()
        cas = [e["cas"] for e in epochs]
        if any(c is not None for c in cas):
            right.plot(xs, [c if c is not None else math.nan for c in cas], "o-", ms=3, color="tab:red",
                       label="CAS")
        right.set_ylabel("CAS (held-out PGD examples)", fontsize=8, color="tab:red")
        best = max(epochs, key=lambda e: (e["robust_acc"], -e["epoch"]))
        ax.axvline(best["epoch"], color="k", ls=":", lw=1)
        ax.text(best["epoch"], ax.get_ylim()[1], f" best {best['epoch']}", fontsize=7, va="top")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(plain_text(title), fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path, style, default_dpi=110)
