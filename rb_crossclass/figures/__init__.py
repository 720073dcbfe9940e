"""Every figure the package draws, in one style (:mod:`.canvas`): attribution-matrix heatmaps
(:mod:`.heatmap`), per-class bars (:mod:`.per_class`),
training curves (:mod:`.curves`), leaderboard scatter plots (:mod:`.scatter`)
and the theory's figures (:mod:`.synthetic`)."""

from ..core.lazy import lazy_exports

__all__ = [
    "FORMATS",
    "FigureError",
    "FigureStyle",
    "heatmap_size_px",
    "new_figure",
    "plain_text",
    "plot_attribution_matrix",
    "plot_cas_vs_robust",
    "plot_curves",
    "plot_matrix_difference",
    "plot_per_class",
    "rank_correlation",
    "save_figure",
]

lazy_exports(__name__, {
    "FORMATS": ".canvas",
    "FigureError": ".canvas",
    "FigureStyle": ".canvas",
    "new_figure": ".canvas",
    "plain_text": ".canvas",
    "save_figure": ".canvas",
    "plot_curves": ".curves",
    "heatmap_size_px": ".heatmap",
    "plot_attribution_matrix": ".heatmap",
    "plot_matrix_difference": ".heatmap",
    "plot_per_class": ".per_class",
    "plot_cas_vs_robust": ".scatter",
    "rank_correlation": ".scatter",
})
