"""A card as a table a person reads (``rb-crossclass card show``): RobustBench's fields, the
cross-class scores with their intervals and matrix, then every block flattened into
``dotted.key  value`` rows with numbers formatted, long lists shortened and matrices named by size."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..core.formatting import MISSING, format_number
from .matrices import matrix_array

__all__ = ["card_table", "flatten_block", "format_value"]

LIST_ITEMS = 10
"""Items of a list shown before it is cut short."""
_SCORES = ("cas", "normalized_cas", "fsi", "clean_cas", "clean_normalized_cas", "clean_fsi")
_SHOWN_ABOVE = {"matrix", "clean_matrix", "class_names", *_SCORES}


def format_value(value: Any) -> str:
    """One value as text: floats with 4 significant digits, booleans as ``yes``/``no``, ``None``,
    NaN and ``""`` as :data:`~rb_crossclass.core.formatting.MISSING`, lists of scalars joined with ``, ``
    (the first :data:`LIST_ITEMS` and a count), lists of lists or objects by their size."""
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return format_number(value, ".4g")
    if isinstance(value, (list, tuple)):
        if not value:
            return "none"
        if all(v is None or isinstance(v, (list, tuple)) for v in value) and any(value):
            if all(v is None or len(v) == 2 for v in value):  # intervals (None: a class without points)
                shown = ", ".join(MISSING if v is None else f"{format_value(v[0])}-{format_value(v[1])}"
                                  for v in value[:LIST_ITEMS])
                return shown + (f", ... ({len(value)} intervals)" if len(value) > LIST_ITEMS else "")
            return f"{len(value)} lists (--json to see them)"
        if any(isinstance(v, Mapping) for v in value):
            return f"{len(value)} entries (--json to see them)"
        shown = ", ".join(format_value(v) for v in value[:LIST_ITEMS])
        return shown + (f", ... ({len(value)} values)" if len(value) > LIST_ITEMS else "")
    return str(value)


def _is_matrix_key(key: str) -> bool:
    return key.endswith("matrix") or key.endswith("confusion")


def flatten_block(block: Mapping[str, Any], prefix: str = "",
                  skip: Sequence[str] = ()) -> Iterator[tuple[str, str]]:
    """``(dotted key, text)`` rows of a nested block (keys in ``skip`` at its top level left
    out); a matrix (inline or packed) becomes ``KxK matrix``, an interval pair ``low-high``."""
    for key, value in block.items():
        if key in skip:
            continue
        name = f"{prefix}{key}"
        if _is_matrix_key(key) and isinstance(value, (list, Mapping)) and value:
            try:
                k, m = matrix_array(value).shape
                yield name, f"{k}x{m} matrix (--json to see it)"
                continue
            except Exception:  # noqa: BLE001 - a matrix that does not decode is shown as what it is
                pass
        if key == "intervals" and isinstance(value, Mapping):
            yield from _interval_rows(block, value, f"{name}.")
        elif isinstance(value, Mapping):
            yield from flatten_block(value, f"{name}.")
        elif (key.endswith("interval") or key in ("cas", "clean_cas", "clean_accuracy", "robust_accuracy")) \
                and isinstance(value, list) and len(value) == 2 and not isinstance(value[0], list):
            yield name, f"{format_value(value[0])}-{format_value(value[1])}"
        else:
            yield name, format_value(value)


def _interval_rows(block: Mapping[str, Any], intervals: Mapping[str, Any],
                   prefix: str) -> Iterator[tuple[str, str]]:
    """The ``intervals`` of a scores block; CAS intervals as the withholding rule shows them
    (:func:`~rb_crossclass.crossclass.uncertainty.shown_cas_interval`), never a withheld number."""
    from ..crossclass.uncertainty import shown_cas_interval

    for key, value in intervals.items():
        if key in ("cas", "clean_cas"):
            ci = shown_cas_interval(dict(block), key)
            if ci is None:
                continue
            text = ci if isinstance(ci, str) else f"{format_value(ci[0])}-{format_value(ci[1])}"
            yield f"{prefix}{key}", text
        elif isinstance(value, list) and len(value) == 2 and not isinstance(value[0], list):
            yield f"{prefix}{key}", f"{format_value(value[0])}-{format_value(value[1])}"
        else:
            yield f"{prefix}{key}", format_value(value)


def _rows(rows: list[tuple[str, str]], width: int | None = None) -> list[str]:
    width = width or min(44, max((len(k) for k, _ in rows), default=0))
    return [f"  {k:<{width}} {v}" for k, v in rows]


def card_table(card: Mapping[str, Any]) -> str:
    """The text table of a validated ``card`` (:func:`~rb_crossclass.cards.load_card`): its name,
    RobustBench's fields (accuracies in %), the cross-class scores with 95 % intervals and the
    attribution matrix (up to 20 classes), then the ``cross_class``, ``evaluation`` and
    ``training`` blocks and any further field, flattened with dotted keys."""
    from ..crossclass.uncertainty import shown_cas_interval

    def interval(cc: Mapping, key: str) -> str:
        ci = shown_cas_interval(cc, key) if key in ("cas", "clean_cas") else None
        if isinstance(ci, str):
            return f"  (95% CI {ci})"
        return f"  (95% CI {format_value(ci[0])}-{format_value(ci[1])})" if ci else ""

    name = str(card["name"])
    lines = [name, "=" * min(len(name), 100)]
    robust = card.get("autoattack_acc", card.get("corruptions_acc"))
    label = "AutoAttack acc" if "autoattack_acc" in card else "corruptions acc"
    rows = [
        ("dataset", card["dataset"]), ("eps", card["eps"]), ("architecture", card["architecture"]),
        ("clean acc", f"{card['clean_acc']} %"), (label, f"{robust} %" if robust is not None else MISSING),
        ("reported acc", card.get("reported")), ("additional data", card["additional_data"]),
        ("forward passes", card["number_forward_passes"]), ("venue", card["venue"]),
        ("link", card["link"]), ("authors", card["authors"]),
    ]
    rows += [(k, card[k]) for k in ("external", "unreliable", "footnote") if card.get(k) not in (None, "")]
    lines += _rows([(k, format_value(v)) for k, v in rows], 16)
    shown = {"name", "dataset", "eps", "architecture", "clean_acc", "autoattack_acc", "corruptions_acc",
             "reported", "additional_data", "number_forward_passes", "venue", "link", "authors",
             "external", "unreliable", "footnote"}
    cc = card.get("cross_class")
    if cc:
        attack = cc.get("attack") or {}
        lines += ["", f"cross-class features (examples: {attack.get('name')}, n={cc.get('n_examples')})"]
        lines += [f"  {k:<20} {format_value(cc.get(k))}{interval(cc, k)}" for k in _SCORES]
        aa = cc.get("autoattack")
        if isinstance(aa, Mapping):
            lines.append(f"  {'cas (AA examples)':<20} {format_value(aa.get('cas'))}")
        if "matrix" in cc:
            lines += _matrix_lines(cc["matrix"], list(cc.get("class_names") or []))
        pgd = cc.get("pgd")
        if isinstance(pgd, Mapping):
            lines += ["", f"  PGD protocol ({(pgd.get('attack') or {}).get('name')}): CAS "
                      f"{format_value(pgd.get('cas'))}, normalized "
                      f"{format_value(pgd.get('normalized_cas'))}, FSI {format_value(pgd.get('fsi'))}"]
        lines += ["", "cross_class (all fields)"]
        lines += _rows(list(flatten_block(cc, "cross_class.", skip=tuple(_SHOWN_ABOVE))))
    for block in ("evaluation", "training"):
        if card.get(block):
            lines += ["", block]
            lines += _rows(list(flatten_block(_readable_flags(card[block]), f"{block}.")))
    blocks = ("cross_class", "evaluation", "training")
    rest = {k: v for k, v in card.items() if k not in shown and k not in blocks}
    if rest:
        lines += ["", "other fields"]
        lines += _rows(list(flatten_block(rest)))
    return "\n".join(lines)


def _readable_flags(block: Mapping[str, Any]) -> Mapping[str, Any]:
    """``block`` with its packed per-point flags (:mod:`.flags`, hex) as counts a person reads:
    ``"3 of 4 points correct (packed per point; --json to see them)"``."""
    packed = block.get("point_flags")
    n = block.get("n_examples")
    if not isinstance(packed, Mapping) or not isinstance(n, int):
        return block
    from .flags import unpack_flags

    readable = {}
    for key, value in packed.items():
        try:
            correct = sum(unpack_flags(value, n))
            readable[key] = f"{correct} of {n} points correct (packed per point; --json to see them)"
        except (TypeError, ValueError):
            readable[key] = value
    return {**block, "point_flags": readable}


def _matrix_lines(matrix: Any, names: list[str]) -> list[str]:
    values = matrix_array(matrix)
    k = values.shape[0]
    if k > 20 or len(names) != k:
        return [f"  {'matrix':<20} {k}x{k} (use --json to see it)"]
    short = [n[:5] for n in names]
    out = ["", "  attribution matrix C[i,j] = cos(A_i, A_j)",
           "  " + " " * 6 + "".join(f"{s:>6}" for s in short)]
    for s, row in zip(short, values.tolist(), strict=True):
        out.append(f"  {s:<6}" + "".join(f"{'nan' if v != v else f'{v:6.2f}':>6}" for v in row))
    return out
