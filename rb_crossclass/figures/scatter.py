"""Scatter plots of a leaderboard: cross-class scores against robustness, one point per model, with
Spearman's rank correlation in each panel (scipy)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from .canvas import FigureStyle, new_figure, plain_text, save_figure

PANELS = (("cas", "CAS"), ("normalized_cas", "normalized CAS"))


EXACT_P_UP_TO = 8  # models; up to here the p-value enumerates every pairing (8! = 40,320)


def rank_correlation(xs: Sequence[float], ys: Sequence[float]) -> tuple[float | None, float | None]:
    """Spearman's ρ and its two-sided p-value (``None`` with fewer than 3 points or a constant
    variable). With at most :data:`EXACT_P_UP_TO` points the p-value is exact (the share of all
    pairings of the ranks whose |ρ| is at least as large: 1/3 for three models in perfect order),
    above it scipy's t approximation (which would claim p = 0 for any perfect order)."""
    if len(xs) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None, None
    from scipy.stats import spearmanr

    res = spearmanr(xs, ys)
    rho = float(res.statistic)
    p = _exact_p(xs, ys, rho) if len(xs) <= EXACT_P_UP_TO else float(res.pvalue)
    return (rho if math.isfinite(rho) else None), (p if math.isfinite(p) else None)


def _exact_p(xs: Sequence[float], ys: Sequence[float], rho: float) -> float:
    import itertools

    import numpy as np
    from scipy.stats import rankdata

    def centred(r):
        r = r - r.mean(axis=-1, keepdims=True)
        return r / np.linalg.norm(r, axis=-1, keepdims=True)

    rx = centred(rankdata(xs))
    pairings = centred(np.array(list(itertools.permutations(rankdata(ys)))))
    rhos = pairings @ rx
    return float(np.mean(np.abs(rhos) >= abs(rho) - 1e-9))


def plot_cas_vs_robust(rows: Sequence[dict], path: str | os.PathLike, *, title: str,
                       accuracy_label: str = "AutoAttack", style: FigureStyle | None = None
                       ) -> tuple[int, list[dict]]:
    """CAS and normalized CAS (the paper's protocol) against the board's robust accuracy
    (``board_acc``: AutoAttack, or corruptions accuracy) and against the worst class's accuracy of
    the same kind, one point per model labelled with its board rank; returns how many models were
    plotted and the four rank correlations (``{"x", "y", "rho", "p", "n"}``)."""
    robust_axes = (("board_acc", f"{accuracy_label} accuracy (%)"),
                   ("worst_class_robust", f"worst-class {accuracy_label} accuracy (%)"))
    fig = new_figure((10.5, 7.6), dpi=110)
    axes = fig.subplots(2, 2, squeeze=False)
    correlations, plotted = [], set()
    for row_i, (cas_key, cas_label) in enumerate(PANELS):
        for col_i, (acc_key, acc_label) in enumerate(robust_axes):
            ax = axes[row_i][col_i]
            points = [r for r in rows if r.get(cas_key) is not None and r.get(acc_key) is not None]
            plotted.update(r["model_id"] for r in points)
            rho, p = rank_correlation([r[acc_key] for r in points], [r[cas_key] for r in points])
            correlations.append({"x": cas_label, "y": acc_label.replace(" (%)", ""), "rho": rho, "p": p,
                                 "n": len(points)})
            _panel(ax, points, acc_key, cas_key, acc_label, cas_label, rho)
    fig.suptitle(f"{plain_text(title)}: cross-class features vs robustness ({len(plotted)} models)",
                 fontsize=11)
    fig.tight_layout()
    save_figure(fig, path, style, default_dpi=110)
    return len(plotted), correlations


def _panel(ax, points: Sequence[dict], acc_key: str, cas_key: str, acc_label: str, cas_label: str,
           rho: float | None) -> None:
    if not points:
        ax.text(0.5, 0.5, f"no model has both {cas_label}\nand {acc_label}", ha="center", va="center",
                fontsize=9, transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    for official, color, label in ((False, "tab:blue", "rb-crossclass entry"),
                                   (True, "tab:orange", "official entry, measured by us")):
        group = [r for r in points if r["official"] == official]
        if group:
            ax.scatter([r[acc_key] for r in group], [r[cas_key] for r in group], c=color, s=34,
                       edgecolors="black", linewidths=0.5, zorder=3, label=label)
    for r in points:  # the board rank, not the ID: IDs overlap as soon as models are close
        ax.annotate(str(r["rank"]), (r[acc_key], r[cas_key]), textcoords="offset points", xytext=(4, 4),
                    fontsize=7)
    ax.set_xlabel(acc_label, fontsize=9)
    ax.set_ylabel(f"{cas_label} (PGD protocol)", fontsize=9)
    ax.set_title("Spearman ρ = " + (f"{rho:.2f}" if rho is not None else "n/a") + f" (n = {len(points)})",
                 fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.margins(0.15)
    ax.legend(loc="best", fontsize=7)
