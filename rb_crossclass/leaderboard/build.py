"""Building a board: read, merge and order the cards, then write every output atomically.

The output folder is replaced only when it is ours: empty, or holding the marker file
:data:`MARKER` (or, for boards built before the marker existed, ``leaderboard.json``) and
nothing but files a build writes. A folder with anything else in it, the current folder or one
of its parents, a cards folder given with ``--cards`` (or a folder holding one), a symbolic link
or an existing file is refused with a clear message, and nothing is deleted.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..core.io import atomic_write_json, atomic_write_text, new_sibling_dir, replace_dir
from ..core.threat import accuracy_field, check_threat_model, ranking_fields
from ..figures import FigureStyle, plot_cas_vs_robust
from .collect import Entry, LeaderboardError, collect_cards, merge_cards, order_entries
from .comparability import assign_groups_and_tiers, board_eps, group_descriptions
from .render import (
    ACCURACY_LABELS,
    TIER_TEXT,
    entry_row,
    per_class_block,
    per_class_percent,
    protocol_summary,
    render_html,
    render_markdown,
    render_model_page,
    title_of,
)

MARKER = ".rb-crossclass-leaderboard"
OUTPUT_FILES = ("index.html", "README.md", "leaderboard.json", "cas_vs_robust.png")
FIGURE_COPIES = ("cas_vs_robust.pdf", "cas_vs_robust.svg")  # with --format pdf|svg
PAGES = "models"  # one page per measured model


@dataclass
class LeaderboardResult:
    """What a build wrote; ``n_*`` count entries of the board; ``warnings``: upstream slips."""

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
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """What ``rb-crossclass leaderboard`` prints: the board, its counts and order, the files
        written, then one ``warning:`` line per upstream slip."""
        return "\n".join([
            f"leaderboard {self.dataset}/{self.threat_model}: {self.n_entries} entries "
            f"({self.n_official} official, {self.n_measured} with cross-class scores, "
            f"{self.n_plotted} plotted), sorted by {self.sort_by}",
            f"wrote {', '.join(self.files)} to {self.out_dir}",
            *(f"warning: {w}" for w in self.warnings)])


def build_rows(card_dirs: Sequence[str | os.PathLike], dataset: str, threat_model: str,
               sort_by: str = "robust", warnings: list[str] | None = None,
               eps: str | None = None) -> list[dict]:
    """Read, merge and order the cards; the rows of the board (no files written). Upstream slips
    are appended to ``warnings`` when a list is given. ``eps``: the board's radius (entries at
    another one are left out); ``None``: the one radius of all cards (several are an error)."""
    return [row for row, _ in _board(card_dirs, dataset, threat_model, sort_by, warnings, eps).pairs]


@dataclass
class _Board:
    pairs: list[tuple[dict, Entry]]
    eps: str | None
    comparisons: list[dict]


def _board(card_dirs: Sequence[str | os.PathLike], dataset: str, threat_model: str, sort_by: str,
           warnings: list[str] | None, eps: str | None = None) -> _Board:
    files = collect_cards(card_dirs, dataset, threat_model)
    entries = merge_cards(files, threat_model)
    entries, board_radius, skipped = board_eps(entries, threat_model, eps)
    if warnings is not None:
        warnings.extend(w for f in files for w in f.warnings)
        warnings.extend(skipped)
    if not entries:
        raise LeaderboardError(
            f"no {dataset}/{threat_model} cards{f' at eps {board_radius}' if board_radius else ''} in "
            f"{', '.join(str(d) for d in card_dirs)}"
        )
    field_name = accuracy_field(threat_model)
    ordered = order_entries(entries, sort_by)
    rows = [entry_row(e, i + 1, field_name) for i, e in enumerate(ordered)]
    _, comparisons = assign_groups_and_tiers(rows, ordered, dataset, threat_model, board_radius)
    return _Board(list(zip(rows, ordered, strict=True)), board_radius, comparisons)


def composition_rows(rows: Sequence[dict]) -> list[dict]:
    """The 'ranked by feature composition' view: entries with a CAS, by CAS descending."""
    scored = [r for r in rows if r["cas"] is not None]
    ordered = sorted(scored, key=lambda r: r["cas"], reverse=True)
    return [{**r, "rank": i + 1, "board_rank": r["rank"]} for i, r in enumerate(ordered)]


def check_output_folder(out_dir: str | os.PathLike, card_dirs: Sequence[str | os.PathLike]) -> Path:
    """``out_dir`` as a Path when a build may replace it (see the module docstring), else
    :class:`LeaderboardError` naming the problem."""
    if not str(out_dir).strip():
        raise LeaderboardError("--out is empty: name the board's folder")
    out = Path(out_dir)
    if out.is_symlink():
        raise LeaderboardError(f"--out {out} is a symbolic link: give the folder itself")
    if out.exists() and not out.is_dir():
        raise LeaderboardError(f"--out {out} exists and is not a folder")
    resolved, cwd = out.resolve(), Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise LeaderboardError(f"--out {out} is the current folder or one of its parents: the board "
                               "replaces its folder, so give it a folder of its own")
    for d in card_dirs:
        cards = Path(d).resolve()
        if resolved == cards or resolved in cards.parents:
            raise LeaderboardError(f"--out {out} holds the cards folder {d}: building would replace it")
    if out.is_dir():
        names = {p.name for p in out.iterdir()}
        written = set(OUTPUT_FILES) | set(FIGURE_COPIES) | {MARKER, PAGES}
        ours = names <= written and (MARKER in names or "leaderboard.json" in names)
        if names and not ours:
            foreign = sorted(names - written)[:5]
            raise LeaderboardError(
                f"refusing to replace {out}: it holds files a leaderboard build did not write "
                f"({', '.join(foreign) or 'no ' + MARKER}); choose another --out or empty it"
            )
    return out


def _write_model_pages(board: list[tuple[dict, Entry]], folder: Path, dataset: str,
                       threat_model: str) -> None:
    """One self-contained page per measured model, with its attribution-matrix heatmap inline."""
    from ..cards.matrices import matrix_array
    from ..figures import plot_attribution_matrix

    for row, entry in board:
        if not row["page"]:
            continue
        protocol = entry.protocol_scores or entry.autoattack_scores
        png = None
        if protocol and protocol.get("matrix"):
            heatmap = plot_attribution_matrix(matrix_array(protocol["matrix"]), protocol["class_names"],
                                              folder / "heatmap.png",
                                              title=f"{row['model_id'][:60]}: {row['cas_protocol'] or 'CAS'}")
            png = heatmap.read_bytes()
            heatmap.unlink()
        bars_png = _per_class_png(row, entry, folder)
        page = render_model_page(row, entry, dataset=dataset, threat_model=threat_model, heatmap_png=png,
                                 per_class_png=bars_png)
        atomic_write_text(folder / row["page"].split("/", 1)[1], page)


def _per_class_png(row: dict, entry: Entry, folder: Path) -> bytes | None:
    """The model's per-class bars (clean and robust accuracy with 95 % intervals) as PNG bytes."""
    from ..figures import plot_per_class

    per_class, by_autoattack = per_class_block(entry)
    table = per_class_percent(per_class)
    if not table["names"]:
        return None
    intervals = table["robust_interval"]
    path = plot_per_class(table["names"], table["clean"], table["robust"], folder / "per_class.png",
                          robust_interval=intervals if any(intervals) else None,
                          robust_label="AutoAttack" if by_autoattack else "PGD-20",
                          title=f"{row['model_id'][:60]}: per-class accuracy")
    png = path.read_bytes()
    path.unlink()
    return png


def _owned(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def build_leaderboard(card_dirs: Sequence[str | os.PathLike], dataset: str, threat_model: str,
                      out_dir: str | os.PathLike, sort_by: str = "robust",
                      style: FigureStyle | None = None, eps: str | None = None) -> LeaderboardResult:
    """Write ``index.html``, ``README.md``, ``leaderboard.json`` and ``cas_vs_robust.png``.

    ``style`` sets the plot's resolution and format: the page embeds the PNG (at ``style.dpi``);
    a PDF or SVG format adds ``cas_vs_robust.pdf`` / ``.svg`` beside it.

    Atomic: a bad card raises :class:`LeaderboardError` (or the cards module's ``CardError``)
    before anything is written, and the previous output folder stays as it was.
    """
    check_threat_model(threat_model)
    style = style or FigureStyle()
    out = check_output_folder(out_dir, card_dirs)
    warnings: list[str] = []
    built = _board(card_dirs, dataset, threat_model, sort_by, warnings, eps)
    board = built.pairs
    rows = [row for row, _ in board]
    groups = group_descriptions(rows)
    composition = composition_rows(rows)
    title = f"{title_of(dataset)} {threat_model}"
    field_name = accuracy_field(threat_model)
    tmp = new_sibling_dir(out)
    try:
        plot = {"title": title, "accuracy_label": ACCURACY_LABELS[field_name]}
        n_plotted, correlations = plot_cas_vs_robust(rows, tmp / "cas_vs_robust.png", **plot,
                                                     style=FigureStyle("png", style.dpi))
        if style.format != "png":
            plot_cas_vs_robust(rows, tmp / f"cas_vs_robust.{style.format}", **plot, style=style)
        png = (tmp / "cas_vs_robust.png").read_bytes()
        atomic_write_text(tmp / "index.html", render_html(
            rows, composition, dataset=dataset, threat_model=threat_model, sort_by=sort_by, plot_png=png,
            correlations=correlations, groups=groups, eps=built.eps))
        _write_model_pages(board, tmp / PAGES, dataset, threat_model)
        atomic_write_text(tmp / "README.md", render_markdown(
            rows, dataset=dataset, threat_model=threat_model, sort_by=sort_by, correlations=correlations,
            groups=groups, eps=built.eps))
        atomic_write_json(tmp / "leaderboard.json", {
            "dataset": dataset,
            "threat_model": threat_model,
            "eps": built.eps,
            "accuracy_field": field_name,
            "sort_by": sort_by,
            "order_rule": (
                f"descending by the first present of ({', '.join(ranking_fields(threat_model))}) as floats; "
                "ties in file order (folders as given, sorted file names within a folder)"
                if sort_by == "robust" else f"descending by {sort_by}; entries without it last"),
            "card_dirs": [str(d) for d in card_dirs],
            "warnings": warnings,
            "cas_protocol": protocol_summary(rows),
            "correlations": correlations,
            "comparability_groups": groups,
            "tier_rule": TIER_TEXT,
            "comparisons": built.comparisons,
            "entries": rows,
            "composition": [{"rank": r["rank"], "model_id": r["model_id"], "cas": r["cas"],
                             "normalized_cas": r["normalized_cas"], "fsi": r["fsi"],
                             "board_rank": r["board_rank"]} for r in composition],
        })
        (tmp / MARKER).write_text("written by rb-crossclass leaderboard: rebuilding replaces this folder\n")
        replace_dir(tmp, out, owned=_owned)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return LeaderboardResult(
        out_dir=str(out), dataset=dataset, threat_model=threat_model, sort_by=sort_by,
        n_entries=len(rows), n_official=sum(r["official"] for r in rows),
        n_measured=sum(r["measured"] for r in rows), n_plotted=n_plotted,
        card_dirs=[str(d) for d in card_dirs], warnings=warnings,
        files=[*OUTPUT_FILES, *([f"cas_vs_robust.{style.format}"] if style.format != "png" else []), MARKER]
        + ([PAGES] if any(r["page"] for r in rows) else []),
    )

