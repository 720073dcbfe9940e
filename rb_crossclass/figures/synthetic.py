"""Figures of the synthetic experiments (the two-weight theory, CAS per epoch, the patch model)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .canvas import FigureStyle, epoch_axis, new_figure, plain_text, save_figure

RECIPE_COLORS = {"pgd_at": "tab:blue", "trades": "tab:orange", "label_smoothing": "tab:green",
                 "ema_self_distill": "tab:red", "kd": "tab:purple", "standard": "tab:gray"}


def plot_linear_theory(result: dict, path: str | os.PathLike, style: FigureStyle | None = None) -> Path:
    """Left: w1, w2 vs ε (closed form lines, numerical markers), hard and soft labels, with the
    thresholds; right: exact robust accuracy vs w2 (w1 = 1) at a few ε."""
    fig = new_figure((11, 4.2), dpi=110)
    ax, ax2 = fig.subplots(1, 2)
    eps = result["eps"]
    mu = result["model"]["mu"]
    alpha = result["alpha"]
    series = [("closed_hard", "numeric_hard", "hard labels", "tab:blue"),
              ("closed_soft", "numeric_soft", f"soft labels (α={alpha:g})", "tab:red")]
    ax.plot(eps, [w[0] for w in result["closed_hard"]], color="0.55", lw=2.2,
            label="w1 exclusive (same for hard and soft)")
    for closed, numeric, label, color in series:
        c = result[closed]
        n = result[numeric]
        ax.plot(eps, [w[1] for w in c], color=color, lw=2, label=f"w2 cross-class, {label}")
        ax.plot(eps, [w[0] for w in n], "s", color="0.55", ms=3, mfc="none")
        ax.plot(eps, [w[1] for w in n], "o", color=color, ms=3.5, mfc="none")
    ax.plot([], [], "ko", ms=3.5, mfc="none", label="numerical optimum (markers)")
    ax.axvline(result["eps0"], color="tab:blue", ls="--", lw=1)
    ax.axvline(result["eps_alpha"], color="tab:red", ls="--", lw=1)
    ax.axvline(mu / 2, color="k", ls=":", lw=1)
    top = max(w[0] for w in result["closed_hard"])
    ax.text(result["eps0"], top * 0.6, f" ε0={result['eps0']:.3f}", color="tab:blue", fontsize=8)
    ax.text(result["eps_alpha"], top * 0.52, f" ε1={result['eps_alpha']:.3f}", color="tab:red", fontsize=8)
    ax.text(mu / 2, top * 0.44, " μ/2", fontsize=8)
    k = result["model"]["num_classes"]
    ax.set(xlabel="ε (ℓ∞)", ylabel="robust-optimal weight",
           title=f"Two-weight robust optimum, K={k}, μ={mu:g}, σ={result['model']['sigma']:g}")
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(alpha=0.3)
    w2 = result["accuracy_w2"]
    for e, acc in zip(result["accuracy_eps"], result["accuracy"], strict=True):
        ax2.plot(w2, [100 * a for a in acc], lw=2, label=f"ε={e:g}")
    ax2.set(xlabel="cross-class weight w2 (w1 = 1)", ylabel="robust accuracy (%)",
            title="Cross-class features help robust classification")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path, style, default_dpi=110)


def plot_cas_curves(runs: Sequence[dict], path: str | os.PathLike, num_classes: int,
                    style: FigureStyle | None = None) -> Path:
    """One column per ε: adversarial CAS, clean-input CAS and (linear nets) w2/w1 vs epoch, one
    line per recipe."""
    eps_values = sorted({r["eps"] for r in runs})
    has_ratio = any(h["weight_ratio"] is not None for r in runs for h in r["history"])
    rows = 3 if has_ratio else 2
    fig = new_figure((3.6 * len(eps_values), 2.6 * rows), dpi=110)
    axes = fig.subplots(rows, len(eps_values), squeeze=False, sharex=True)
    keys = [("cas", "CAS (PGD-20 examples)"), ("clean_cas", "CAS (clean inputs)")]
    if has_ratio:
        keys.append(("weight_ratio", "w2/w1 of the linear head"))
    for col, eps in enumerate(eps_values):
        for run in (r for r in runs if r["eps"] == eps):
            epochs = [h["epoch"] for h in run["history"]]
            for row, (key, _) in enumerate(keys):
                vals = [h[key] for h in run["history"]]
                axes[row][col].plot(epochs, vals, "-o", ms=3, color=RECIPE_COLORS.get(run["recipe"]),
                                    label=plain_text(run["recipe"]))
        axes[0][col].set_title(f"ε = {eps:g}  (robust acc: " + ", ".join(
            f"{r['history'][-1]['robust_accuracy'] * 100:.0f}%" for r in runs if r["eps"] == eps) + ")",
            fontsize=9)
        axes[-1][col].set_xlabel("epoch")
        epoch_axis(axes[-1][col].xaxis)  # shared x: one locator for the column
        for row, (_, label) in enumerate(keys):
            axes[row][col].grid(alpha=0.3)
            if col == 0:
                axes[row][col].set_ylabel(label, fontsize=8)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"Cross-class Gaussian data (K={num_classes}): linear network trained with our recipes",
                 fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, style, default_dpi=110)


def plot_patch(experiment: dict, path: str | os.PathLike, style: FigureStyle | None = None) -> Path:
    """Left: robust (Γ_u) and non-robust (Γ_v) alignment vs step, standard vs adversarial
    training; right: clean and robust test accuracy (PGD and oracle flip) vs step."""
    fig = new_figure((11, 4.2), dpi=110)
    ax, ax2 = fig.subplots(1, 2)
    styles = {"standard": "-", "adversarial": "--"}
    for mode in ("standard", "adversarial"):
        hist = experiment[mode]["history"]
        steps = [h["step"] for h in hist]
        ax.plot(steps, [h["gamma_u"] for h in hist], styles[mode], color="tab:green", lw=2,
                label=f"robust (sparse) Γ_u, {mode}")
        ax.plot(steps, [h["gamma_v"] for h in hist], styles[mode], color="tab:purple", lw=2,
                label=f"non-robust (dense) Γ_v, {mode}")
        ax2.plot(steps, [100 * h["clean_accuracy"] for h in hist], styles[mode], color="tab:gray",
                 lw=2, label=f"clean, {mode}")
        ax2.plot(steps, [100 * h["pgd_accuracy"] for h in hist], styles[mode], color="tab:red",
                 lw=2, label=f"PGD-10, {mode}")
        ax2.plot(steps, [100 * h["flip_accuracy"] for h in hist], styles[mode], color="tab:blue",
                 lw=1.5, label=f"oracle flip, {mode}")
    ax.set(xlabel="gradient step", ylabel="mean_j max_r ⟨w_jr, feature_j⟩",
           title="Feature learning: standard (solid) vs adversarial (dashed)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax2.set(xlabel="gradient step", ylabel="test accuracy (%)", ylim=(-3, 103),
            title=f"Accuracy, ε = {experiment['config']['eps']:g} per patch in span(v)")
    ax2.legend(fontsize=7)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path, style, default_dpi=110)
