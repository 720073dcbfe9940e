"""Training curves: clean / robust accuracy and CAS per epoch, best epoch marked."""

from __future__ import annotations

import os
from pathlib import Path

from .canvas import FigureStyle, epoch_axis, new_figure, plain_text, save_figure


def plot_curves(records: list[dict], path: str | os.PathLike, best_epoch: int | None = None,
                title: str = "", style: FigureStyle | None = None) -> Path:
    """Plot ``records`` (metrics.jsonl rows with ``epoch``, ``clean_acc``, ``robust_acc`` and
    optionally ``cas`` / ``clean_cas``) to a two-panel PNG written atomically."""
    rows = [r for r in records if r.get("clean_acc") is not None]
    epochs = [r["epoch"] for r in rows]
    fig = new_figure((10, 4), dpi=110)
    ax_acc, ax_cas = fig.subplots(1, 2)
    ax_acc.plot(epochs, [100 * r["clean_acc"] for r in rows], "o-", label="clean")
    attack = rows[0].get("attack", "robust") if rows else "robust"
    ax_acc.plot(epochs, [100 * r["robust_acc"] for r in rows], "s-", label=plain_text(attack))
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("held-out accuracy (%)")
    ax_acc.set_title("accuracy")
    has_cas = any(r.get("cas") is not None for r in rows)
    if has_cas:
        ax_cas.plot(epochs, [r.get("cas") for r in rows], "o-", color="C3", label="CAS (adversarial)")
        if any(r.get("clean_cas") is not None for r in rows):
            ax_cas.plot(epochs, [r.get("clean_cas") for r in rows], "^--", color="C4", label="CAS (clean)")
    else:
        ax_cas.text(0.5, 0.5, "CAS not computed", ha="center", va="center", transform=ax_cas.transAxes)
    ax_cas.set_xlabel("epoch")
    ax_cas.set_ylabel("CAS")
    ax_cas.set_title("cross-class attribution similarity")
    for ax in (ax_acc, ax_cas):
        epoch_axis(ax.xaxis)
        if best_epoch is not None:
            ax.axvline(best_epoch, color="k", ls=":", lw=1, label=f"best epoch ({best_epoch})")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(plain_text(title))
    fig.tight_layout()
    return save_figure(fig, path, style, default_dpi=110)
