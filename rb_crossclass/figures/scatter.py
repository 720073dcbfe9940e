"""Scatter plots of a leaderboard: cross-class scores against robustness, one point per model."""

from __future__ import annotations

import os
from collections.abc import Sequence

from .canvas import FigureStyle, new_figure, plain_text, save_figure


def plot_cas_vs_robust(rows: Sequence[dict], path: str | os.PathLike, *, title: str,
                       accuracy_label: str = "AutoAttack", style: FigureStyle | None = None) -> int:
    """Scatter of CAS against the board's robust accuracy (``board_acc`` of each row: AutoAttack,
    or corruptions accuracy on corruption boards) for the rows that have both; returns how many."""
    points = [r for r in rows if r["cas"] is not None and r["board_acc"] is not None]
    fig = new_figure((6.4, 4.4), dpi=110)
    ax = fig.subplots()
    if points:
        for official, color, label in ((False, "tab:blue", "rb-crossclass entry"),
                                       (True, "tab:orange", "official entry, CAS measured by us")):
            group = [r for r in points if r["official"] == official]
            if group:
                ax.scatter([r["board_acc"] for r in group], [r["cas"] for r in group], c=color,
                           s=36, edgecolors="black", linewidths=0.5, zorder=3, label=label)
        ax.legend(loc="best", fontsize=8)
        xs = [r["board_acc"] for r in points]
        middle = (min(xs) + max(xs)) / 2
        for r in points:  # labels point inwards so they stay inside the axes
            right = r["board_acc"] > middle
            ax.annotate(plain_text(r["model_id"]), (r["board_acc"], r["cas"]),
                        textcoords="offset points", xytext=(-5 if right else 5, 5),
                        ha="right" if right else "left", fontsize=7)
        ax.set_xlabel(f"{accuracy_label} robust accuracy (%)")
        ax.set_ylabel("CAS (cross-class attribution score)")
        ax.grid(True, alpha=0.3)
        ax.margins(0.15)
    else:
        ax.text(0.5, 0.5, f"No entry has both CAS and {accuracy_label} accuracy yet",
                ha="center", va="center", fontsize=11, transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_title(f"{plain_text(title)}: CAS vs {accuracy_label} ({len(points)} entries)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, style, default_dpi=110)
    return len(points)
