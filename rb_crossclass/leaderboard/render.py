"""The board's pages: one row per entry, the self-contained HTML page and the Markdown table."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from .collect import Entry
from .sanitize import safe_href, sanitize_html, strip_html

MISSING = "—"
DATASET_TITLES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "imagenet": "ImageNet", "mnist": "MNIST"}

def _fmt(value: float | None, digits: int) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


def title_of(dataset: str) -> str:
    return DATASET_TITLES.get(dataset, dataset)


def _display(row: dict) -> dict:
    """The display strings of a row's numbers, shared by the HTML page and the Markdown table."""
    extra = row["additional_data"]
    return {
        "clean_txt": _fmt(row["clean_acc"], 2),
        "aa_txt": _fmt(row["autoattack_acc"], 2),
        "best_txt": _fmt(row["best_known_acc"], 2),
        "cas_txt": _fmt(row["cas"], 2),
        "ncas_txt": _fmt(row["normalized_cas"], 3),
        "fsi_txt": _fmt(row["fsi"], 3),
        "extra_txt": MISSING if extra is None else ("yes" if extra else "no"),
    }


def entry_row(entry: Entry, rank: int) -> dict:
    """Everything a board shows about one entry, as plain JSON values (numbers as floats)."""
    card = entry.card
    best_known = entry.robust_key
    evaluation = entry.measured.get("evaluation") or {}
    return {
        "rank": rank,
        "model_id": entry.model_id,
        "name": " ".join((card.get("name") or "").split()),  # plain text, escaped on output
        "link": safe_href(card.get("link")),
        "authors": card.get("authors") or "",
        "clean_acc": entry.number("clean_acc"),
        "autoattack_acc": entry.number("autoattack_acc"),
        "best_known_acc": best_known,
        "cas": entry.cross("cas"),
        "normalized_cas": entry.cross("normalized_cas"),
        "fsi": entry.cross("fsi"),
        "cross_class_n_examples": (entry.measured.get("cross_class") or {}).get("n_examples"),
        "evaluation_n_examples": evaluation.get("n_examples") if isinstance(evaluation, dict) else None,
        "architecture": card.get("architecture") or "",
        "additional_data": card.get("additional_data"),
        "venue": card.get("venue") or "",
        "footnote": card.get("footnote") or "",
        "eps": card.get("eps"),
        "unreliable": bool(card.get("unreliable", False)),
        "official": entry.official,
        "measured": entry.ours,
        "card_files": entry.files,
    }


def _asset(name: str) -> str:
    from importlib.resources import files

    return files("rb_crossclass").joinpath("templates", name).read_text(encoding="utf-8")


def _csp_hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def _html_row(row: dict) -> dict:
    """Display strings for the HTML template (escaped by jinja2, except the sanitized fields)."""
    from markupsafe import Markup

    return {
        **row,
        **_display(row),
        "venue_html": Markup(sanitize_html(row["venue"])) if row["venue"] else Markup(MISSING),
        "footnote_html": Markup(sanitize_html(row["footnote"])),
    }


def render_html(rows: Sequence[dict], composition: Sequence[dict], *, dataset: str, threat_model: str,
                sort_by: str, plot_png: bytes | None) -> str:
    """The self-contained page: inline CSS/JS (allowed by hash in the CSP), the plot as data URI."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader("rb_crossclass", "templates"), autoescape=True,
                      undefined=StrictUndefined, keep_trailing_newline=True)
    css, js = _asset("leaderboard.css"), _asset("leaderboard.js")
    plot_uri = ("data:image/png;base64," + base64.b64encode(plot_png).decode("ascii")) if plot_png else None
    return env.get_template("leaderboard.html.j2").render(
        title=f"Extended RobustBench leaderboard: {title_of(dataset)}, {threat_model}",
        dataset=dataset, threat_model=threat_model, sort_by=sort_by,
        rows=[_html_row(r) for r in rows], composition=[_html_row(r) for r in composition],
        n_official=sum(r["official"] for r in rows), n_measured=sum(r["measured"] for r in rows),
        css=css, js=js, csp_style=_csp_hash(css), csp_script=_csp_hash(js), plot_uri=plot_uri,
        missing=MISSING,
    )


def _md(text: str) -> str:
    """Plain text safe inside a Markdown table cell."""
    text = " ".join(strip_html(text).split())
    for a, b in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|"), ("[", "\\["), ("]", "\\]")):
        text = text.replace(a, b)
    return text


def render_markdown(rows: Sequence[dict], *, dataset: str, threat_model: str, sort_by: str) -> str:
    title = f"Extended RobustBench leaderboard: {title_of(dataset)}, {threat_model}"
    lines = [
        f"# {title}", "",
        f"{len(rows)} entries ({sum(r['official'] for r in rows)} official RobustBench cards, "
        f"{sum(r['measured'] for r in rows)} with cross-class scores measured by rb-crossclass). "
        + ("Ranked by RobustBench's rule: best known robust accuracy (`external`, else "
           "`autoattack_acc`), descending; ties in file order."
           if sort_by == "robust" else f"Ranked by `{sort_by}`, descending; entries without it last."),
        "CAS: cross-class attribution score (0 to K(K-1)); nCAS: CAS / K(K-1); FSI: feature-sharing "
        f"index. {MISSING}: not measured. Open `index.html` for the sortable page.", "",
        "| # | Model ID | Paper | Clean | AutoAttack | Best known | CAS | nCAS | FSI | Architecture "
        "| Extra data | Venue |",
        "|:-:|---|---|:-:|:-:|:-:|:-:|:-:|:-:|:-:|:-:|:-:|",
    ]
    for r in rows:
        paper = _md(r["name"]) or _md(r["model_id"])
        if r["link"]:
            paper = f"[{paper}](<{r['link'].replace('>', '%3E').replace(' ', '%20')}>)"
        t = _display(r)
        lines.append(
            f"| {r['rank']} | {_md(r['model_id'])} | {paper} | {t['clean_txt']} | {t['aa_txt']} | "
            f"{t['best_txt']} | {t['cas_txt']} | {t['ncas_txt']} | {t['fsi_txt']} | "
            f"{_md(r['architecture'])} | {t['extra_txt']} | {_md(r['venue']) or MISSING} |"
        )
    return "\n".join(lines) + "\n"
