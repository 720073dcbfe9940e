"""Every figure the package draws, in one style (:mod:`.canvas`): attribution-matrix heatmaps
(:mod:`.heatmap`), per-class bars (:mod:`.per_class`),
training curves (:mod:`.curves`), leaderboard scatter plots (:mod:`.scatter`)
and the theory's figures (:mod:`.synthetic`)."""

from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from .canvas import FORMATS, FigureError, FigureStyle, new_figure, plain_text, save_figure
    from .curves import plot_curves
    from .heatmap import heatmap_size_px, plot_attribution_matrix, plot_matrix_difference
    from .per_class import plot_per_class
    from .scatter import plot_cas_vs_robust, rank_correlation

lazy_exports(__name__)
