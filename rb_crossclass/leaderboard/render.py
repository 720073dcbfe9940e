"""The board's pages: one row per entry, the self-contained HTML page and the Markdown table."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence

from ..core.datasets import DATASET_TITLES as DATASET_TITLES  # re-exported: its old home
from ..core.datasets import dataset_title
from ..core.formatting import MISSING, format_number
from ..core.threat import ranking_fields
from .collect import Entry
from .sanitize import safe_href, sanitize_html, strip_html

ACCURACY_LABELS = {"autoattack_acc": "AutoAttack", "corruptions_acc": "Corruptions",
                   "corruptions_acc_3d": "3D corruptions"}

def _fmt(value: float | None, digits: int) -> str:
    """``value`` with ``digits`` decimals (:func:`rb_crossclass.core.formatting.format_number`)."""
    return format_number(value, f".{digits}f")


def title_of(dataset: str) -> str:
    """A dataset's board title (:func:`rb_crossclass.core.datasets.dataset_title`)."""
    return dataset_title(dataset)


def _interval_text(interval: list | None, digits: int) -> str:
    return "" if not interval else f"95% CI {interval[0]:.{digits}f}–{interval[1]:.{digits}f}"


def _supported_interval(block: dict) -> list | None:
    """The CAS interval a board shows: none where the rule withholds it (too few points a class)."""
    from ..crossclass.uncertainty import shown_cas_interval

    ci = shown_cas_interval(block)
    return list(ci) if isinstance(ci, tuple) else None


def _display(row: dict) -> dict:
    """The display strings of a row's numbers, shared by the HTML page and the Markdown table."""
    extra = row["additional_data"]
    return {
        "clean_txt": _fmt(row["clean_acc"], 2),
        "aa_txt": _fmt(row["board_acc"], 2),
        "aa_ci": _interval_text(row["board_acc_interval"], 1),
        "best_txt": _fmt(row["best_known_acc"], 2),
        "worst_txt": _fmt(row["worst_class_robust"], 2),
        "worst_title": ("all classes tie" if row.get("class_spread") == 0 else f"class {row['worst_class']}")
        if row["worst_class"] is not None else "",
        "cas_txt": _fmt(row["cas"], 2),
        "cas_ci": _interval_text(row["cas_interval"], 2),
        "ncas_txt": _fmt(row["normalized_cas"], 3),
        "fsi_txt": _fmt(row["fsi"], 3),
        "extra_txt": MISSING if extra is None else ("yes" if extra else "no"),
        "n_txt": format_number(row.get("n_examples"), ","),
        "eps_txt": row.get("eps_txt") or MISSING,
        "tier_txt": row.get("tier") or MISSING,
        "cost_txt": cost_text(row.get("aa_cost")),
        "other_eps_txt": {e: {"robust": _fmt(v["robust"], 1), "cas": _fmt(v["cas"], 2),
                              "cas_ci": _interval_text(v["cas_interval"], 2)}
                          for e, v in (row.get("other_eps") or {}).items()},
    }


def entry_row(entry: Entry, rank: int, accuracy_field: str = "autoattack_acc") -> dict:
    """Everything a board shows about one entry, as plain JSON values (numbers as floats);
    ``board_acc`` is the board's measured accuracy field (``autoattack_acc``, ``corruptions_acc``);
    ``cas`` / ``normalized_cas`` / ``fsi`` are the paper's PGD protocol's, ``cas_autoattack`` the
    CAS of AutoAttack's own examples (shown only with that label)."""
    card = entry.card
    evaluation = entry.measured.get("evaluation") or {}
    protocol = entry.protocol_scores or {}
    per_class = evaluation.get("per_class") or {}
    intervals = evaluation.get("intervals") or {}
    aa_scores = entry.autoattack_scores or {}
    return {
        "rank": rank,
        "model_id": entry.model_id,
        "name": " ".join((card.get("name") or "").split()),  # plain text, escaped on output
        "link": safe_href(card.get("link")),
        "authors": card.get("authors") or "",
        "clean_acc": entry.number("clean_acc"),
        "autoattack_acc": entry.number("autoattack_acc"),
        "board_acc": entry.number(accuracy_field),
        "best_known_acc": entry.robust_key,
        "board_acc_interval": _percent_interval(intervals.get("autoattack_accuracy")),
        "clean_acc_interval": _percent_interval(intervals.get("clean_accuracy")),
        "worst_class": per_class.get("worst_class"),
        "worst_class_robust": _percent(per_class.get("worst_class_robust_accuracy")),
        "class_spread": _percent(per_class.get("spread")),
        "cas": entry.cross("cas"),
        "cas_interval": _supported_interval(protocol),
        "normalized_cas": entry.cross("normalized_cas"),
        "fsi": entry.cross("fsi"),
        "cas_protocol": _protocol(protocol.get("attack")),
        "cas_autoattack": aa_scores.get("cas"),
        "clean_cas": protocol.get("clean_cas"),
        "cross_class_n_examples": protocol.get("n_examples"),
        "evaluation_n_examples": evaluation.get("n_examples") if isinstance(evaluation, dict) else None,
        "architecture": card.get("architecture") or "",
        "additional_data": card.get("additional_data"),
        "venue": card.get("venue") or "",
        "footnote": card.get("footnote") or "",
        "eps": card.get("eps"),
        "unreliable": bool(card.get("unreliable", False)),
        "official": entry.official,
        "measured": entry.ours,
        "page": f"models/{page_name(entry.model_id)}" if entry.ours else None,
        "card_files": entry.files,
        "other_eps": _other_eps(protocol),
        "aa_cost": _aa_cost(evaluation) if not entry.official else None,
        "confusion_rho": (protocol.get("confusion_correlation") or {}).get("spearman_rho"),
        "confusion_p": (protocol.get("confusion_correlation") or {}).get("p_value"),
    }


def _other_eps(protocol: dict) -> dict:
    """The PGD-20 protocol at further radii (``cross_class.other_eps``): ε string → robust accuracy
    (%), CAS and its interval."""
    out = {}
    for o in protocol.get("other_eps") or []:
        if isinstance(o, dict) and o.get("eps_string"):
            out[o["eps_string"]] = {"robust": _percent(o.get("robust_accuracy")), "cas": o.get("cas"),
                                    "cas_interval": (o.get("intervals") or {}).get("cas")}
    return out


def _aa_cost(evaluation: dict) -> dict | None:
    """What our evaluation of the row cost: passes through the model (forward/backward samples),
    wall seconds and where it ran (``evaluation.cost`` when the card has it, else the evaluation's
    own counters)."""
    if not isinstance(evaluation, dict) or evaluation.get("forward_samples") is None:
        return None
    cost = evaluation.get("cost") or {}
    return {"forward_samples": evaluation.get("forward_samples"),
            "backward_samples": evaluation.get("backward_samples"), "seconds": evaluation.get("seconds"),
            "device": cost.get("device") or evaluation.get("device"), "threads": cost.get("threads")}


def cost_text(cost: dict | None) -> str:
    """``3.39 M fwd + 0.83 M bwd · 167 s · cpu×1`` (samples through the model, wall seconds of the
    whole evaluation, device × CPU threads when recorded)."""
    if not cost:
        return MISSING
    fwd, bwd = (cost["forward_samples"] or 0) / 1e6, (cost["backward_samples"] or 0) / 1e6
    parts = [f"{fwd:.2f} M fwd + {bwd:.2f} M bwd"]
    if cost.get("seconds") is not None:
        parts.append(f"{cost['seconds']:.0f} s")
    if cost.get("device"):
        parts.append(f"{cost['device']}" + (f"×{cost['threads']}" if cost.get("threads") else ""))
    return " · ".join(parts)


def other_eps_columns(rows: Sequence[dict]) -> list[str]:
    """The further radii any row has PGD-20 numbers at, in first-seen order."""
    seen: list[str] = []
    for r in rows:
        for e in r.get("other_eps") or {}:
            if e not in seen:
                seen.append(e)
    return seen


def page_name(model_id: str) -> str:
    """The file name of a model's page: its ID with anything outside RobustBench's ID characters
    replaced (plus a short hash then, so two IDs never share a page)."""
    safe = re.sub(r"[^A-Za-z0-9_.+-]", "_", model_id)[:100].lstrip(".") or "model"
    if safe != model_id:
        safe += "-" + hashlib.sha256(model_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{safe}.html"


def _percent(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def _percent_interval(interval: list | None) -> list | None:
    if not interval or None in interval:
        return None
    return [100.0 * interval[0], 100.0 * interval[1]]


def _protocol(attack: dict | None) -> str | None:
    """The attack of the cross-class scores in words: ``PGD-20, Linf eps 8/255, step 2/255``."""
    if not attack:
        return None
    from ..core.threat import format_eps

    parts = [f"PGD-{attack.get('steps')}", f"{attack.get('norm', 'Linf')} eps {format_eps(attack['eps'])}"
             if isinstance(attack.get("eps"), (int, float)) else None,
             f"step {format_eps(attack['step_size'])}" if isinstance(attack.get("step_size"), (int, float))
             else None]
    return ", ".join(p for p in parts if p)


def protocol_summary(rows: Sequence[dict]) -> str:
    """How the board's CAS column was measured, exactly: the one protocol shared by every measured
    entry, or each distinct (attack, N) with how many entries used it."""
    counts: dict[tuple, int] = {}
    for r in rows:
        if r["cas"] is not None:
            key = (r["cas_protocol"], r["cross_class_n_examples"])
            counts[key] = counts.get(key, 0) + 1
    if not counts:
        return "no entry has cross-class scores yet"
    if len(counts) == 1:
        (protocol, n), = counts
        return f"{protocol}, on the first {n} test points"
    parts = [f"{protocol} on the first {n} test points ({c} {'entry' if c == 1 else 'entries'})"
             for (protocol, n), c in counts.items()]
    return ("; ".join(parts) + ". CAS measured on different N or at different radii are not comparable "
            "to each other: read the N column")


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


def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(loader=PackageLoader("rb_crossclass", "templates"), autoescape=True,
                       undefined=StrictUndefined, keep_trailing_newline=True)


def _data_uri(png: bytes | None) -> str | None:
    return ("data:image/png;base64," + base64.b64encode(png).decode("ascii")) if png else None


def render_html(rows: Sequence[dict], composition: Sequence[dict], *, dataset: str, threat_model: str,
                sort_by: str, plot_png: bytes | None, correlations: Sequence[dict] = (),
                groups: Sequence[dict] = (), eps: str | None = None) -> str:
    """The self-contained page: inline CSS/JS (allowed by hash in the CSP), the plot as data URI;
    ``correlations``: Spearman rank correlations of CAS with robustness (shown under the plot);
    ``groups``: the comparability groups (:func:`.comparability.group_descriptions`)."""
    css, js = _asset("leaderboard.css"), _asset("leaderboard.js")
    ranking = ranking_fields(threat_model)
    return _environment().get_template("leaderboard.html.j2").render(
        title=board_title(dataset, threat_model, eps), tier_text=TIER_TEXT, group_lines=group_lines(groups),
        groups_note=groups_note(groups), extra_eps=other_eps_columns(rows),
        dataset=dataset, threat_model=threat_model, sort_by=sort_by,
        acc_label=ACCURACY_LABELS[ranking[-1]], ranking=ranking, protocol=protocol_summary(rows),
        rows=[_html_row(r) for r in rows], composition=[_html_row(r) for r in composition],
        n_official=sum(r["official"] for r in rows), n_measured=sum(r["measured"] for r in rows),
        css=css, js=js, csp_style=_csp_hash(css), csp_script=_csp_hash(js), plot_uri=_data_uri(plot_png),
        correlations=[correlation_text(c) for c in correlations], missing=MISSING,
    )


def per_class_block(entry: Entry) -> tuple[dict, bool]:
    """The per-class results a model page shows: our AutoAttack evaluation's when the card has
    them (``True``), else the PGD-protocol scores' (``False``); ``{}`` when neither."""
    evaluation = entry.measured.get("evaluation") or {}
    if evaluation.get("per_class"):
        return evaluation["per_class"], True
    return (entry.protocol_scores or {}).get("per_class") or {}, False


def per_class_percent(per_class: dict) -> dict:
    """A per-class block in percent: ``names``, ``clean``, ``robust`` (``None`` for a class
    without points) and ``robust_interval`` (``None`` where missing), one entry per class."""
    names = per_class.get("class_names") or []
    intervals = per_class.get("robust_interval") or []
    return {"names": list(names),
            "clean": [_percent(v) for v in per_class.get("clean_accuracy") or []],
            "robust": [_percent(v) for v in per_class.get("robust_accuracy") or []],
            "robust_interval": [_percent_interval(intervals[i]) if i < len(intervals) else None
                                for i in range(len(names))]}


def render_model_page(row: dict, entry: Entry, *, dataset: str, threat_model: str,
                      heatmap_png: bytes | None, per_class_png: bytes | None = None) -> str:
    """One measured model's self-contained page: accuracies with intervals, per-class clean and
    robust accuracy as bars, the attribution-matrix heatmap, the top shared class pairs and how
    it was evaluated. Card text is escaped (venue and footnote sanitized) as on the board."""
    css = _asset("leaderboard.css")
    evaluation = entry.measured.get("evaluation") or {}
    protocol = entry.protocol_scores or {}
    per_class, by_autoattack = per_class_block(entry)
    table = per_class_percent(per_class)
    bars = [{"name": n, "count": per_class["counts"][i], "clean": table["clean"][i],
             "robust": table["robust"][i]} for i, n in enumerate(table["names"])]
    return _environment().get_template("model.html.j2").render(
        row=_html_row(row), dataset=dataset, threat_model=threat_model, title_of=title_of(dataset),
        acc_label=ACCURACY_LABELS[ranking_fields(threat_model)[-1]],
        robust_label="AutoAttack" if by_autoattack else protocol_summary([row]),
        bars=bars, per_class=per_class, heatmap_uri=_data_uri(heatmap_png),
        per_class_uri=_data_uri(per_class_png),
        top_pairs=protocol.get("top_pairs") or [], evaluation=evaluation,
        diagnostics=evaluation.get("diagnostics") or [], css=css, csp_style=_csp_hash(css),
        missing=MISSING, fmt=_fmt,
    )


def _md(text: str) -> str:
    """Plain text safe inside a Markdown table cell."""
    text = " ".join(strip_html(text).split())
    for a, b in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|"), ("[", "\\["), ("]", "\\]")):
        text = text.replace(a, b)
    return text


def _worst_class_name(row: dict) -> str:
    """The worst class's name, or "all classes" when every class ties (spread 0: no class is worst)."""
    return "all classes" if row.get("class_spread") == 0 else _md(str(row["worst_class"]))


TIER_TEXT = (
    "Tier: entries that cannot be told apart at 95 % share a tier. Within each comparability group "
    "(the letter), every pair of entries is tested (McNemar's exact test on per-point robust results "
    "where both entries have them, else a two-proportion z-test on the aggregate accuracies), the "
    "p-values are corrected with Holm's method over all pairs of the group, and a new tier starts at "
    "the first entry that differs significantly from its tier's best entry.")


def group_lines(groups: Sequence[dict]) -> list[str]:
    """One sentence per comparability group (the page and the Markdown say the same)."""
    return [f"{g['group']}: {g['protocol']} ({g['entries']} {'entry' if g['entries'] == 1 else 'entries'}, "
            f"{g['tiers']} {'tier' if g['tiers'] == 1 else 'tiers'})" for g in groups]


def groups_note(groups: Sequence[dict]) -> str:
    """How the groups differ, or that every row is comparable."""
    if len(groups) <= 1:
        return "Every ranked entry was measured the same way (one comparability group)."
    return ("These groups were measured on different test points or with different attacks: the list "
            "ranks them together by RobustBench's rule, but only entries of the same group may be "
            "compared, and tiers are computed within a group.")


def board_title(dataset: str, threat_model: str, eps: str | None) -> str:
    return (f"Extended RobustBench leaderboard: {title_of(dataset)}, {threat_model}"
            + (f", ε = {eps}" if eps else ""))


def correlation_text(c: dict) -> str:
    """One rank correlation in words (the HTML page and the Markdown table say the same); one of
    several comparability groups is named (correlations never pool groups)."""
    within = f" within group {c['group']}" if c.get("group") is not None else ""
    if c["rho"] is None:
        return f"Spearman rank correlation of {c['x']} with {c['y']}{within}: undefined ({c['n']} models)"
    p = f" (p = {c['p']:.2g})" if c["p"] is not None else ""
    return (f"Spearman rank correlation of {c['x']} with {c['y']}{within}: ρ = {c['rho']:.2f} over "
            f"{c['n']} models{p}")


def render_markdown(rows: Sequence[dict], *, dataset: str, threat_model: str, sort_by: str,
                    correlations: Sequence[dict] = (), groups: Sequence[dict] = (),
                    eps: str | None = None) -> str:
    title = board_title(dataset, threat_model, eps)
    extra_eps = other_eps_columns(rows)
    ranking = ranking_fields(threat_model)
    rule = ("best known robust accuracy (`external`, else `autoattack_acc`)" if len(ranking) > 1
            else f"`{ranking[0]}`")
    lines = [
        f"# {title}", "",
        f"{len(rows)} entries ({sum(r['official'] for r in rows)} official RobustBench cards, "
        f"{sum(r['measured'] for r in rows)} with cross-class scores measured by rb-crossclass). "
        + (f"Ranked by RobustBench's rule: {rule}, descending; ties in file order."
           if sort_by == "robust" else f"Ranked by `{sort_by}`, descending; entries without it last."),
        "CAS: cross-class attribution score (0 to K(K-1)) of the paper's protocol "
        f"({protocol_summary(rows)}), with its 95% bootstrap interval; nCAS: CAS / K(K-1); FSI: "
        f"feature-sharing index; worst class: the lowest per-class {ACCURACY_LABELS[ranking[-1]]} accuracy "
        "and that class (our evaluation). "
        + ("Best known: RobustBench's `external`, the lowest robust accuracy any evaluation reported "
           "(e.g. an adaptive attack), when present, else the AutoAttack accuracy; RobustBench ranks by it. "
           if len(ranking) > 1 else "")
        + "*unreliable*: AutoAttack's own checks warned about this evaluation (RobustBench's flag). "
        f"{MISSING}: not measured. N: test points the robust accuracy was measured on; ε: the radius. "
        + "".join(f"PGD-20 @{e} / CAS @{e}: the paper's PGD-20 protocol at radius {e} "
                  "(robust accuracy %, CAS), "
                  "beside the board's own radius. " for e in extra_eps)
        + "AA cost: what our evaluation cost (samples through the model forward and backward, wall "
        "seconds of AutoAttack and the scoring passes, device × CPU threads; RobustBench publishes no "
        "cost for its rows). Open `index.html` for the sortable page and each model's page.", "",
        TIER_TEXT, "",
        "Comparability groups:", "",
        *(f"- {line}" for line in group_lines(groups)), "",
        groups_note(groups), "",
        f"| # | Tier | Model ID | Paper | N | ε | Clean | {ACCURACY_LABELS[ranking[-1]]} | Best known "
        "| Worst class "
        "| CAS | nCAS | FSI | " + "".join(f"PGD-20 @{e} | CAS @{e} | " for e in extra_eps)
        + "AA cost | Architecture | Extra data | Venue |",
        "|:-:|:-:|---|---|:-:|:-:|:-:|:-:|:-:|:-:|:-:|:-:|:-:|" + ":-:|:-:|" * len(extra_eps)
        + ":-:|:-:|:-:|:-:|",
    ]
    for r in rows:
        paper = _md(r["name"]) or _md(r["model_id"])
        if r["link"]:
            paper = f"[{paper}](<{r['link'].replace('>', '%3E').replace(' ', '%20')}>)"
        t = _display(r)
        other = t["other_eps_txt"]
        extra_cells = "".join(
            f"{other[e]['robust']} | {other[e]['cas']} | " if e in other else f"{MISSING} | {MISSING} | "
            for e in extra_eps)
        lines.append(
            f"| {r['rank']} | {t['tier_txt']} | {_md(r['model_id'])} | {paper} | {t['n_txt']} "
            f"| {t['eps_txt']} "
            f"| {t['clean_txt']} | {t['aa_txt']}"
            + (" *unreliable*" if r["unreliable"] else "") + " | "
            f"{t['best_txt']} | {t['worst_txt']}"
            + (f" ({_worst_class_name(r)})" if r["worst_class"] is not None else "")
            + f" | {t['cas_txt']}"
            + (f" ({r['cas_interval'][0]:.2f}–{r['cas_interval'][1]:.2f})" if r["cas_interval"] else "")
            + f" | {t['ncas_txt']} | {t['fsi_txt']} | {extra_cells}{t['cost_txt']} | "
            f"{_md(r['architecture'])} | {t['extra_txt']} | {_md(r['venue']) or MISSING} |"
        )
    if correlations:
        lines += ["", *(f"- {correlation_text(c)}" for c in correlations)]
    return "\n".join(lines) + "\n"
