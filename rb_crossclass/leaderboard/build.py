"""Building a board: read, merge and order the cards, then write every output atomically."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ..core.io import atomic_write_json, atomic_write_text, new_sibling_dir, replace_dir
from ..figures import plot_cas_vs_robust
from .collect import LeaderboardError, collect_cards, merge_cards, order_entries
from .render import entry_row, render_html, render_markdown, title_of

OUTPUT_FILES = ("index.html", "README.md", "leaderboard.json", "cas_vs_robust.png")


@dataclass
class LeaderboardResult:
    """What a build wrote; ``n_*`` count entries of the board."""

    out_dir: str
    dataset: str
    threat_model: str
    sort_by: str
    n_entries: int
    n_official: int
    n_measured: int
    n_plotted: int
    card_dirs: list[str]
    files: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def build_rows(card_dirs: Sequence[str | os.PathLike], dataset: str, threat_model: str,
               sort_by: str = "robust") -> list[dict]:
    """Read, merge and order the cards; the rows of the board (no files written)."""
    entries = merge_cards(collect_cards(card_dirs, dataset, threat_model))
    if not entries:
        raise LeaderboardError(
            f"no {dataset}/{threat_model} cards in {', '.join(str(d) for d in card_dirs)}"
        )
    return [entry_row(e, i + 1) for i, e in enumerate(order_entries(entries, sort_by))]


def composition_rows(rows: Sequence[dict]) -> list[dict]:
    """The 'ranked by feature composition' view: entries with a CAS, by CAS descending."""
    scored = [r for r in rows if r["cas"] is not None]
    ordered = sorted(scored, key=lambda r: r["cas"], reverse=True)
    return [{**r, "rank": i + 1, "board_rank": r["rank"]} for i, r in enumerate(ordered)]


def build_leaderboard(card_dirs: Sequence[str | os.PathLike], dataset: str, threat_model: str,
                      out_dir: str | os.PathLike, sort_by: str = "robust") -> LeaderboardResult:
    """Write ``index.html``, ``README.md``, ``leaderboard.json`` and ``cas_vs_robust.png``.

    Atomic: a bad card raises :class:`LeaderboardError` (or the cards module's ``CardError``)
    before anything is written, and the previous output folder stays as it was.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise LeaderboardError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "leaderboard.json").is_file():
        raise LeaderboardError(
            f"refusing to replace {out}: it is not empty and holds no leaderboard.json "
            "(not a leaderboard output folder)"
        )
    rows = build_rows(card_dirs, dataset, threat_model, sort_by)
    composition = composition_rows(rows)
    title = f"{title_of(dataset)} {threat_model}"
    tmp = new_sibling_dir(out)
    try:
        n_plotted = plot_cas_vs_robust(rows, tmp / "cas_vs_robust.png", title=title)
        png = (tmp / "cas_vs_robust.png").read_bytes()
        atomic_write_text(tmp / "index.html", render_html(
            rows, composition, dataset=dataset, threat_model=threat_model, sort_by=sort_by, plot_png=png))
        atomic_write_text(tmp / "README.md", render_markdown(
            rows, dataset=dataset, threat_model=threat_model, sort_by=sort_by))
        atomic_write_json(tmp / "leaderboard.json", {
            "dataset": dataset,
            "threat_model": threat_model,
            "sort_by": sort_by,
            "order_rule": (
                "descending by the first present of (external, autoattack_acc) as floats; ties in "
                "file order (folders as given, sorted file names within a folder)"
                if sort_by == "robust" else f"descending by {sort_by}; entries without it last"),
            "card_dirs": [str(d) for d in card_dirs],
            "entries": rows,
            "composition": [{"rank": r["rank"], "model_id": r["model_id"], "cas": r["cas"],
                             "normalized_cas": r["normalized_cas"], "fsi": r["fsi"],
                             "board_rank": r["board_rank"]} for r in composition],
        })
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return LeaderboardResult(
        out_dir=str(out), dataset=dataset, threat_model=threat_model, sort_by=sort_by,
        n_entries=len(rows), n_official=sum(r["official"] for r in rows),
        n_measured=sum(r["measured"] for r in rows), n_plotted=n_plotted,
        card_dirs=[str(d) for d in card_dirs], files=list(OUTPUT_FILES),
    )
