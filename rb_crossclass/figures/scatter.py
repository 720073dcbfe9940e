"""Scatter plots of a leaderboard: cross-class scores against robustness, one point per model, with
Spearman's rank correlation in each panel (scipy)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from ..core.formatting import format_number
from .canvas import FigureStyle, new_figure, plain_text, save_figure

PANELS = (("cas", "CAS"), ("normalized_cas", "normalized CAS"))


LABEL_IDS_UP_TO = 12  # models per panel labelled by ID (more: by board rank)
INTERVAL_KEYS = {"board_acc": "board_acc_interval", "cas": "cas_interval"}

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
    plotted and the four rank correlations (``{"x", "y", "rho", "p", "n"}``).

    A rank correlation pools only comparable measurements: when the plotted models of a panel fall
    into more than one comparability group (``row["group"]``: another N, ε or attack form), each
    group gets its own correlation, with its ``"group"`` label, and none is computed across groups."""
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
            labels = sorted({r.get("group") for r in points}, key=str)
            panel = []
            for label in labels if len(labels) > 1 else [None]:
                members = points if label is None else [r for r in points if r.get("group") == label]
                rho, p = rank_correlation([r[acc_key] for r in members], [r[cas_key] for r in members])
                panel.append({"x": cas_label, "y": acc_label.replace(" (%)", ""), "rho": rho, "p": p,
                              "n": len(members), **({} if label is None else {"group": label})})
            correlations.extend(panel)
            _panel(ax, points, acc_key, cas_key, acc_label, cas_label, panel)
    fig.suptitle(f"{plain_text(title)}: cross-class features vs robustness ({len(plotted)} models; "
                 "bars: 95 % intervals)", fontsize=11)
    fig.tight_layout()
    for ax in (a for row in axes for a in row):
        _place_labels(ax)
    save_figure(fig, path, style, default_dpi=110)
    return len(plotted), correlations


def _panel(ax, points: Sequence[dict], acc_key: str, cas_key: str, acc_label: str, cas_label: str,
           panel: Sequence[dict]) -> None:
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
            xs, ys = [r[acc_key] for r in group], [r[cas_key] for r in group]
            ax.errorbar(xs, ys, xerr=_errors(group, acc_key, xs), yerr=_errors(group, cas_key, ys),
                        fmt="none", ecolor=color, elinewidth=0.8, capsize=2, alpha=0.7, zorder=2)
            ax.scatter(xs, ys, c=color, s=34, edgecolors="black", linewidths=0.5, zorder=3, label=label)
    by_id = len(points) <= LABEL_IDS_UP_TO  # few models: their IDs; many: the board rank
    grouped = len(panel) > 1  # several comparability groups: each label names its group
    for r in points:
        text = plain_text(_short(r["model_id"])) if by_id else str(r["rank"])
        text += f" ({r.get('group')})" if grouped else ""
        ax.annotate(text, (r[acc_key], r[cas_key]), textcoords="offset points", xytext=(4, 4), fontsize=7,
                    gid="point-label")
    ax.set_xlabel(acc_label, fontsize=9)
    ax.set_ylabel(f"{cas_label} (PGD protocol)", fontsize=9)
    if len(panel) == 1:
        title = f"Spearman ρ = {format_number(panel[0]['rho'], '.2f')} (n = {len(points)})"
    else:  # never pooled over comparability groups
        title = "Spearman ρ within groups: " + ", ".join(
            f"{c['group']} {format_number(c['rho'], '.2f')} (n = {c['n']})" for c in panel)
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.margins(0.15)
    ax.legend(loc="best", fontsize=7)


def _errors(rows: Sequence[dict], key: str, centres: Sequence[float]):
    """Asymmetric error bars ``[[below], [above]]`` from each row's 95 % interval of ``key`` (0 where
    a row has none), or ``None`` when no row has one."""
    interval_key = INTERVAL_KEYS.get(key)
    if interval_key is None or not any(r.get(interval_key) for r in rows):
        return None
    below, above = [], []
    for r, c in zip(rows, centres, strict=True):
        lo_hi = r.get(interval_key)
        if not lo_hi or None in lo_hi:
            below.append(0.0)
            above.append(0.0)
        else:
            below.append(max(0.0, c - lo_hi[0]))
            above.append(max(0.0, lo_hi[1] - c))
    return [below, above]


OFFSETS = [(4, 4), (4, -10), (-6, 6), (-6, -10), (8, 12), (8, -16), (-12, 14), (-12, -18), (14, 0), (-18, 0),
           (0, 16), (0, -20), (20, 20), (20, -24), (-24, 22), (-24, -26)]


def _place_labels(ax) -> None:
    """Move the point labels of ``ax`` so that no two overlap: each label, in drawing order, takes the
    first offset of :data:`OFFSETS` whose box (in display pixels) meets no label placed before it
    (the last offset when every one collides)."""
    labels = [t for t in ax.texts if t.get_gid() == "point-label"]
    if len(labels) < 2:
        return
    renderer = ax.figure.canvas.get_renderer()
    placed = []
    for text in labels:
        for dx, dy in OFFSETS:
            text.set_position((dx, dy))
            box = text.get_window_extent(renderer).expanded(1.05, 1.1)
            if not any(box.overlaps(other) for other in placed):
                break
        placed.append(text.get_window_extent(renderer))


def _short(model_id: str, limit: int = 28) -> str:
    """A model ID cut to ``limit`` characters from the front, where IDs of one paper share a
    prefix and differ at the end (``…OVAL_CIFAR_Base_KW``)."""
    return model_id if len(model_id) <= limit else "…" + model_id[-(limit - 1):]
