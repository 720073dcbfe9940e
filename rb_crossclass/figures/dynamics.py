"""Training dynamics: held-out robust accuracy and CAS per epoch, one panel per run, best epoch marked."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from .canvas import FigureStyle, epoch_axis, new_figure, plain_text, save_figure


def plot_dynamics(runs: Sequence[dict], path: str | os.PathLike, *, title: str = "",
                  style: FigureStyle | None = None) -> Path:
    """``runs``: ``[{"name", "recipe", "eps", "epochs": [{"epoch", "robust_acc" (%), "cas"}]}]``;
    robust accuracy on the left axis, CAS on the right, the best epoch (highest robust accuracy)
    as a dotted line."""
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
        epoch_axis(ax.xaxis)
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


def _run_style(run: dict, runs: Sequence[dict]) -> tuple[str, str]:
    """One colour per recipe; PGD-AT at several ε in one colour, told apart by line style (the
    largest ε solid)."""
    from .synthetic import RECIPE_COLORS

    same = sorted({r["eps"] for r in runs if r["recipe"] == run["recipe"]}, key=_eps_value, reverse=True)
    styles = ["-", "--", ":", "-."]
    return RECIPE_COLORS.get(run["recipe"], "tab:gray"), styles[same.index(run["eps"]) % len(styles)]


def _eps_value(eps: str) -> float:
    num, _, den = str(eps).partition("/")
    return float(num) / float(den or 1)


def plot_seed_dynamics(runs: Sequence[dict], path: str | os.PathLike, *, title: str = "",
                       footer: Sequence[str] = (), style: FigureStyle | None = None) -> Path:
    """Several seeds of a reproduction, recipes overlaid on shared axes.

    ``runs``: the aggregate's runs (``{"name", "recipe", "eps", "curves": {"epochs", "cas"|"robust_acc":
    {"mean", "min", "max"}, "seeds": {seed: {"cas", "robust_acc"}}}, "per_seed": {seed: {"best_epoch",
    "cas_best", "robust_best", ...}}, "metrics": {"cas_gap": {"mean", "min", "max", "ci95"}}}``).
    Left and middle: CAS and held-out robust accuracy per epoch, the mean over seeds as a thick line,
    the min–max band over seeds shaded, every seed's raw curve thin, every seed's best epoch a star.
    Right: the best − last CAS gap per run, mean with its 95 % t-interval (≥ 3 seeds) or, with fewer
    seeds, the min–max range (the label says which), and every seed's value as a dot. ``footer``:
    lines printed under the panels (the claims' verdicts).
    """
    extra = 0.17 * len(footer) + (0.1 if footer else 0)  # inches of text under the panels
    fig = new_figure((15.5, 4.6 + extra), dpi=110)
    ax_cas, ax_rob, ax_gap = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.25, 1.25, 1]})
    drawn = [r for r in runs if r["curves"]["epochs"]]
    for run in drawn:
        color, ls = _run_style(run, drawn)
        curves = run["curves"]
        xs = curves["epochs"]
        n = len(run["seeds"])
        for ax, key, best_key in ((ax_cas, "cas", "cas_best"), (ax_rob, "robust_acc", "robust_best")):
            c = curves[key]
            for seed_values in curves["seeds"].values():
                ax.plot(xs, _nan(seed_values[key]), ls, color=color,
                        lw=0.6, alpha=0.35)
            if n > 1:
                ax.fill_between(xs, _nan(c["min"]), _nan(c["max"]), color=color, alpha=0.12, lw=0)
            ax.plot(xs, _nan(c["mean"]), ls, color=color, lw=2,
                    label=plain_text(f"{run['name']} ({n} seed{'s' if n != 1 else ''})"))
            stars = [(m["best_epoch"], m[best_key]) for m in run["per_seed"].values()
                     if m[best_key] is not None]
            if stars:
                ax.plot([x for x, _ in stars], [y for _, y in stars], "*", ms=9, color=color, mec="k",
                        mew=0.6, ls="none")
    for ax, label in ((ax_cas, "CAS (held-out PGD-20 examples)"),
                      (ax_rob, "held-out PGD-20 robust accuracy (%)")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        epoch_axis(ax.xaxis)
        ax.grid(alpha=0.3)
    ax_cas.set_title("CAS: mean over seeds (thick), min–max band over seeds,\nevery seed raw (thin), "
                     "★ each seed's best epoch", fontsize=8)
    ax_rob.set_title("robust accuracy: mean over seeds (thick), min–max band,\nevery seed raw (thin), "
                     "★ each seed's best epoch", fontsize=8)
    ax_cas.legend(fontsize=7, loc="best")
    _gap_panel(ax_gap, drawn)
    if title:
        fig.suptitle(plain_text(title), fontsize=11)
    fig.tight_layout(rect=(0, extra / (4.6 + extra), 1, 1))
    if footer:
        fig.text(0.01, 0.01, plain_text("\n".join(footer)), fontsize=7.5, va="bottom", ha="left")
    return save_figure(fig, path, style, default_dpi=110)


def _nan(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None else v for v in values]


def _gap_panel(ax, runs: Sequence[dict]) -> None:
    """The best − last CAS gap per run with its error bar and every seed's value."""
    labels = []
    for i, run in enumerate(runs):
        color, _ = _run_style(run, runs)
        stat = run["metrics"]["cas_gap"]
        if stat["mean"] is None:
            labels.append(run["name"])
            continue
        lo, hi = stat["ci95"] if stat["ci95"] is not None else (stat["min"], stat["max"])
        ax.bar(i, stat["mean"], color=color, alpha=0.45, width=0.6)
        ax.errorbar(i, stat["mean"], yerr=[[stat["mean"] - lo], [hi - stat["mean"]]], color="k", capsize=4,
                    lw=1.2, ls="none" if stat["ci95"] is not None else ":")
        values = [m["cas_gap"] for m in run["per_seed"].values() if m["cas_gap"] is not None]
        ax.plot([i] * len(values), values, "o", color=color, mec="k", mew=0.5, ms=4, ls="none")
        kind = "95% CI" if stat["ci95"] is not None else ("1 seed" if stat["n"] == 1 else "min–max")
        labels.append(f"{run['name']}\n(n={stat['n']}, {kind})")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(range(len(runs)))
    ax.set_xticklabels([plain_text(t) for t in labels], rotation=35, ha="right", fontsize=7)
    ax.set_ylabel("CAS(best epoch) − CAS(last epoch)")
    ax.set_title("best − last CAS gap: bar = mean, error bar = 95% t-interval\n(≥ 3 seeds) or min–max "
                 "(fewer; dotted), dots = seeds", fontsize=8)
    ax.grid(alpha=0.3, axis="y")
