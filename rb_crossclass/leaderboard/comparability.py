"""Which rows of a board may be compared: comparability groups and the tiers within them.

Two robust accuracies can be compared only when they were measured on the same points under the
same threat model, radius and attack. Each row's **protocol** is

- official RobustBench rows (also when we measured the model too: the board shows RobustBench's
  number): RobustBench's own evaluation (AutoAttack standard, or the ``external``
  number it ranks by) on its full test set (N from
  :func:`~rb_crossclass.core.datasets.robustbench_n_examples`: 10,000 for CIFAR-10), aggregates only;
- rows we measured: our AutoAttack evaluation (its version) on the first N test points of the
  card's ``evaluation`` block, with per-point flags when the card carries them.

Rows with the same (threat model, ε, N, attack) form one **comparability group**, labelled ``A``,
``B``, ... in board order of first appearance; significance tiers (:mod:`.tiers`) are computed
within each group only, so the tier column reads ``A1``, ``A2``, ``B1``. A board holds one ε per
threat model (:func:`board_eps` refuses a mix), so groups differ only in N or attack, and
:func:`group_descriptions` says exactly how.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..cards.flags import unpack_flags
from ..core.datasets import robustbench_n_examples
from ..core.threat import NORMS, format_eps, parse_eps, same_radius
from .collect import Entry, LeaderboardError
from .tiers import assign_tiers, mcnemar_exact_p, two_proportion_p

__all__ = ["Protocol", "assign_groups_and_tiers", "board_eps", "entry_eps", "entry_protocol",
           "group_descriptions"]


@dataclass(frozen=True)
class Protocol:
    """How a row's robust accuracy was measured."""

    threat_model: str
    eps: str  # RobustBench's string form, e.g. "8/255"
    n_examples: int | None
    attack: str  # e.g. "AutoAttack standard (RobustBench's evaluation)"

    def words(self, dataset: str) -> str:
        n = "unknown N" if self.n_examples is None else f"N = {self.n_examples:,}"
        return f"{self.attack}, {self.threat_model} ε = {self.eps}, {n} test points of {dataset}"


def entry_eps(entry: Entry) -> str | None:
    """The entry's ε in RobustBench's string form (from its evaluation, else its card)."""
    evaluation = entry.measured.get("evaluation") or {}
    value = evaluation.get("eps") if isinstance(evaluation, dict) else None
    if value is None:
        value = entry.card.get("eps")
    if value in (None, ""):
        return None
    try:
        return format_eps(parse_eps(value))
    except ValueError:
        return str(value)


def entry_protocol(entry: Entry, dataset: str, threat_model: str) -> Protocol:
    """The protocol of the board accuracy shown for ``entry`` (see the module docstring)."""
    evaluation = entry.measured.get("evaluation")
    eps = entry_eps(entry) or "?"
    if isinstance(evaluation, dict) and evaluation.get("n_examples") and not entry.official:
        version = evaluation.get("autoattack_version", "standard")
        return Protocol(threat_model, eps, int(evaluation["n_examples"]),
                        f"AutoAttack {version} (rb-crossclass, first N points)")
    return Protocol(threat_model, eps, robustbench_n_examples(dataset),
                    "AutoAttack standard or stronger (RobustBench's evaluation)")


def board_eps(entries: Sequence[Entry], threat_model: str,
              eps: str | float | None = None) -> tuple[list[Entry], str | None, list[str]]:
    """Keep one ε per board: with ``eps`` given, entries at another radius are dropped (one warning
    each); without it, entries at two radii are an error naming both. Radii within
    :func:`~rb_crossclass.core.threat.same_radius` of each other are one (RobustBench writes 8/255
    as ``0.031`` on some cards; each row still shows its own value). Returns the entries kept, the
    board's ε (the first radius seen, or ``eps``) and the warnings. Corruption boards have no
    radius: every entry is kept."""
    if threat_model not in NORMS:
        return list(entries), None, []
    wanted = format_eps(parse_eps(eps)) if eps is not None else None
    radii: dict[str, str] = {}
    kept, warnings = [], []
    for e in entries:
        value = entry_eps(e)
        if value is None:
            kept.append(e)
            continue
        if wanted is not None and not same_radius(value, wanted):
            warnings.append(f"{e.files[0]}: skipped, measured at {threat_model} eps {value}, the board's "
                            f"eps is {wanted}")
            continue
        if not any(same_radius(value, r) for r in radii):
            radii[value] = e.model_id
        kept.append(e)
    if len(radii) > 1:
        listed = ", ".join(f"{v} ({m})" for v, m in radii.items())
        raise LeaderboardError(f"a board holds one eps per threat model, these cards hold several: {listed}; "
                               "pass --eps to choose one (the others are left out with a warning)")
    return kept, wanted or next(iter(radii), None), warnings


def _flags(entry: Entry) -> list[bool] | None:
    if entry.official:  # the board shows RobustBench's number, not the one the flags belong to
        return None
    evaluation = entry.measured.get("evaluation") or {}
    packed = (evaluation.get("point_flags") or {}).get("robust") if isinstance(evaluation, dict) else None
    n = evaluation.get("n_examples") if isinstance(evaluation, dict) else None
    if not packed or not n:
        return None
    try:
        return unpack_flags(packed, int(n))
    except ValueError:
        return None


def assign_groups_and_tiers(rows: Sequence[dict], entries: Sequence[Entry], dataset: str, threat_model: str,
                            board_radius: str | None = None) -> tuple[dict[tuple, str], list[dict]]:
    """Set ``group``, ``tier`` (e.g. ``"A2"``), ``n_examples``, ``eps_txt`` and ``protocol_words``
    on every row (rows and entries in board order, one per row), and return the groups (protocol →
    label) and every comparison made (JSON-ready, for ``leaderboard.json``). Rows without a board
    accuracy get no tier. ``board_radius``: the board's ε; a row within
    :func:`~rb_crossclass.core.threat.same_radius` of it joins the board's groups (its ε column
    still shows its card's value)."""
    groups: dict[Protocol, str] = {}
    members: dict[Protocol, list[int]] = {}
    for i, (row, entry) in enumerate(zip(rows, entries, strict=True)):
        proto = entry_protocol(entry, dataset, threat_model)
        row["n_examples"] = proto.n_examples
        row["eps_txt"] = proto.eps if threat_model in NORMS else None
        if board_radius is not None and proto.eps != "?" and same_radius(proto.eps, board_radius):
            proto = Protocol(proto.threat_model, board_radius, proto.n_examples, proto.attack)
        row["threat_model"] = threat_model
        row["protocol_words"] = proto.words(dataset)
        if row.get("board_acc") is None:
            row["group"], row["tier"] = None, None
            continue
        label = groups.setdefault(proto, chr(ord("A") + len(groups)) if len(groups) < 26
                                  else f"G{len(groups)}")
        row["group"] = label
        members.setdefault(proto, []).append(i)
    comparisons: list[dict] = []
    for proto, idx in members.items():
        flags = [_flags(entries[i]) for i in idx]

        def test(a: int, b: int, idx=idx, flags=flags, proto=proto) -> tuple[str, float]:
            fa, fb = flags[a], flags[b]
            if fa is not None and fb is not None and len(fa) == len(fb):
                only_a = sum(x and not y for x, y in zip(fa, fb, strict=True))
                only_b = sum(y and not x for x, y in zip(fa, fb, strict=True))
                return "mcnemar_exact", mcnemar_exact_p(only_a, only_b)
            n = proto.n_examples or 0
            if n <= 0:
                return "none", 1.0
            ka = round(rows[idx[a]]["board_acc"] * n / 100)
            kb = round(rows[idx[b]]["board_acc"] * n / 100)
            return "two_proportion_z", two_proportion_p(ka, n, kb, n)

        tiers, made = assign_tiers(len(idx), test)
        for i, t in zip(idx, tiers, strict=True):
            rows[i]["tier"] = f"{groups[proto]}{t}"
        comparisons.extend({"group": groups[proto], "first": rows[idx[c.first]]["model_id"],
                            "second": rows[idx[c.second]]["model_id"], "test": c.test,
                            "p_value": c.p_value, "holm_adjusted_p": c.adjusted_p} for c in made)
    labels = {(p.threat_model, p.eps, p.n_examples, p.attack): label for p, label in groups.items()}
    return labels, comparisons


def group_descriptions(rows: Sequence[dict]) -> list[dict]:
    """One line per comparability group: its label, protocol in words, entries and tiers."""
    out: dict[str, dict] = {}
    for r in rows:
        if r.get("group") is None:
            continue
        g = out.setdefault(r["group"], {"group": r["group"], "protocol": r["protocol_words"], "entries": 0,
                                        "tiers": set()})
        g["entries"] += 1
        g["tiers"].add(r["tier"])
    return [{**g, "tiers": len(g["tiers"])} for g in out.values()]
