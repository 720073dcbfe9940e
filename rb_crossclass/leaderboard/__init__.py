"""Extended leaderboards: every official RobustBench entry plus our cross-class columns.

- :mod:`.collect` — reading the cards of a board, merging official and measured cards of one
  model, RobustBench's order;
- :mod:`.render` — rows, the self-contained HTML page (sanitized markup, CSP) and Markdown;
- :mod:`.build` — :func:`build_leaderboard`, writing every output atomically.
"""

from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from .build import OUTPUT_FILES, LeaderboardResult, build_leaderboard, build_rows, composition_rows
    from .collect import (
        SORT_CHOICES,
        CardFile,
        Entry,
        LeaderboardError,
        card_paths,
        collect_cards,
        merge_cards,
        order_entries,
    )
    from .render import MISSING, entry_row, render_html, render_markdown

lazy_exports(__name__)
