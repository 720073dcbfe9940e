"""Extended leaderboards: every official RobustBench entry plus our cross-class columns.

- :mod:`.collect` — reading the cards of a board, merging official and measured cards of one
  model, RobustBench's order;
- :mod:`.render` — rows, the self-contained HTML page (sanitized markup, CSP) and Markdown;
- :mod:`.build` — :func:`build_leaderboard`, writing every output atomically.
"""

from ..core.lazy import lazy_exports

__all__ = [
    "MISSING",
    "OUTPUT_FILES",
    "SORT_CHOICES",
    "CardFile",
    "Entry",
    "LeaderboardError",
    "LeaderboardResult",
    "build_leaderboard",
    "build_rows",
    "card_paths",
    "collect_cards",
    "composition_rows",
    "entry_row",
    "merge_cards",
    "order_entries",
    "render_html",
    "render_markdown",
]

lazy_exports(__name__, {
    "OUTPUT_FILES": ".build",
    "LeaderboardResult": ".build",
    "build_leaderboard": ".build",
    "build_rows": ".build",
    "composition_rows": ".build",
    "SORT_CHOICES": ".collect",
    "CardFile": ".collect",
    "Entry": ".collect",
    "LeaderboardError": ".collect",
    "card_paths": ".collect",
    "collect_cards": ".collect",
    "merge_cards": ".collect",
    "order_entries": ".collect",
    "MISSING": ".render",
    "entry_row": ".render",
    "render_html": ".render",
    "render_markdown": ".render",
})
