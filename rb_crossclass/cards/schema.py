"""The card JSON Schema and validation: every card read or written passes :func:`validate_card`.

The schema ships as ``rb_crossclass/schemas/card.schema.json`` (draft 2020-12). Beyond it, checks a
schema cannot express (square matrices matching the class names) run here too. Errors are
:class:`CardError` naming the source (file) and the field as a JSON path
(``$.cross_class.matrix[2]``).
"""

from __future__ import annotations

import json
import re
import reprlib
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from ..core.errors import RBCrossclassError
from ..core.threat import ThreatModelError, check_eps, parse_eps
from .matrices import MatrixFormatError, matrix_array

SCHEMA_RESOURCE = "schemas/card.schema.json"
MAX_CARD_DEPTH = 32  # the deepest real card is ~8 levels (cross_class.pgd.matrix[i][j])
MAX_CARD_LIST = 1000  # the longest list the schema allows (K <= 1000); x_ extension keys are free
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 3, 6, 6, 60, 60


class CardError(RBCrossclassError, ValueError):
    """A card is not valid JSON or breaks the card schema; the message names file and field."""


@lru_cache(maxsize=1)
def card_schema() -> dict:
    """The card JSON Schema (draft 2020-12) shipped with the package."""
    text = resources.files("rb_crossclass").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    return json.loads(text)


def schema_path() -> Path:
    """Filesystem path of the shipped schema (for users pointing other tools at it)."""
    return Path(str(resources.files("rb_crossclass").joinpath(SCHEMA_RESOURCE)))


@lru_cache(maxsize=1)
def _validator():
    import jsonschema

    cls = jsonschema.validators.validator_for(card_schema())
    cls.check_schema(card_schema())
    return cls(card_schema())


def _json_path(parts: Iterable[Any]) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (a 10 MB field must not become a 10 MB message);
    containers are shown a few levels and items deep only, so the cost is bounded too."""
    if isinstance(value, (list, dict)):
        text = _REPR.repr(value)
        return text if len(text) <= limit else f"{text[:limit - 3]}..."
    text = repr(value) if not isinstance(value, str) or len(value) <= 10 * limit else repr(value[:limit])
    n = len(value) if isinstance(value, str) else len(text)
    return text if len(text) <= limit else f"{text[:limit - 3]}... ({n} characters)"


def depth_problem(value: Any, limit: int = MAX_CARD_DEPTH,
                  max_list: int = MAX_CARD_LIST) -> tuple[str, str] | None:
    """``(field path, message)`` for the first list or object nested deeper than ``limit`` levels
    in ``value``, or a list longer than ``max_list`` outside ``x_`` extension keys; else ``None``.
    Iterative (no recursion), so it is safe on any JSON value and runs before anything recursive
    or per-item (the schema validator makes one error per item of a 100,000-item list, ``repr``,
    ``json.dumps``) sees the card."""
    stack: list[tuple[Any, int, tuple, bool]] = [(value, 1, (), False)]
    while stack:
        node, depth, path, free = stack.pop()
        if isinstance(node, dict):
            items = node.items()
        elif isinstance(node, list):
            if len(node) > max_list and not free:
                return _json_path(path), (f"has {len(node)} entries, more than any list of a card may "
                                          f"hold ({max_list})")
            items = enumerate(node)
        else:
            continue
        if depth > limit:
            return _json_path(path), f"nested deeper than {limit} levels; a card is never that deep"
        stack.extend((v, depth + 1, (*path, k), free or str(k).startswith("x_"))
                     for k, v in items if isinstance(v, (dict, list)))
    return None


def _describe(error) -> tuple[str, str]:
    """(field path, message) for a jsonschema error, pointing at the offending field."""
    path = list(error.absolute_path)
    if error.validator == "required":
        missing = re.match(r"'([^']+)' is a required property", error.message)
        if missing:
            return _json_path([*path, missing.group(1)]), "missing required key"
    if error.validator == "additionalProperties":
        extra = re.findall(r"'([^']+)'", error.message.split("(")[-1])
        if extra:
            return _json_path([*path, extra[0]]), (
                f"unknown key {extra[0]!r} (extension keys must start with 'x_')"
            )
    top_any_of = error.validator == "anyOf" and not path and list(error.schema_path)[:1] == ["anyOf"]
    if top_any_of:
        return "$.autoattack_acc", (
            "missing: a card needs autoattack_acc (Linf/L2), corruptions_acc (corruptions), "
            "corruptions_acc_3d (corruptions_3d), or, for "
            "a training run not evaluated with AutoAttack yet, training and cross_class blocks"
        )
    if error.validator == "anyOf" and path and path[-1] != "eps" and error.context:
        # e.g. a matrix (inline rows, or packed): name the problem inside the branch of the value's
        # own type, not "not valid under any of the given schemas"
        inner = [e for e in error.context if e.validator != "type" or list(e.absolute_path) != path]
        if inner:
            import jsonschema

            return _describe(jsonschema.exceptions.best_match(inner))
    if error.validator == "pattern" or (error.validator == "anyOf" and path and path[-1] == "eps"):
        field = str(path[-1]) if path else ""
        if field == "eps":
            return _json_path(path), (f"{_short(error.instance)} is not an epsilon string like "
                                      "'8/255' or '0.5'")
        if error.validator_value == card_schema()["$defs"]["percentString2"]["pattern"]:
            return _json_path(path), (
                f"{_short(error.instance)} must be a percentage with exactly two decimals "
                "(e.g. '53.40') "
                "in cards with an evaluation block"
            )
        if error.validator_value == card_schema()["$defs"]["percentString"]["pattern"]:
            return _json_path(path), (f"{_short(error.instance)} is not a percentage string in "
                                      "[0, 100] like '53.42'")
        return _json_path(path), f"{_short(error.instance)} does not have the expected form"
    if error.validator == "type":
        return _json_path(path), (f"{_short(error.instance)} has the wrong type: "
                                  f"expected {error.validator_value}")
    if error.validator in ("maxLength", "maxItems", "maximum", "minimum", "minLength", "minItems"):
        return _json_path(path), (f"{_short(error.instance)} breaks the limit "
                                  f"{error.validator} {error.validator_value}")
    return _json_path(path), error.message[:300]


def _errors(card: Any) -> list[tuple[str, str]]:
    deep = depth_problem(card)
    if deep:
        return [deep]
    errors = sorted(_validator().iter_errors(card),
                    key=lambda e: (list(map(str, e.absolute_path)), e.message))
    found = list(dict.fromkeys(_describe(e) for e in errors))  # if/then repeats some errors
    if not found and isinstance(card, dict):
        found = _semantic_errors(card)
    return found


def _semantic_errors(card: dict) -> list[tuple[str, str]]:
    """Checks JSON Schema cannot express: an ℓ∞ ε below 1 (:func:`~rb_crossclass.core.threat.check_eps`),
    K x K matrices matching the class names."""
    out: list[tuple[str, str]] = []
    evaluation = card.get("evaluation") if isinstance(card.get("evaluation"), dict) else {}
    cc = card.get("cross_class")
    attack = cc.get("attack") if isinstance(cc, dict) else None
    norm = evaluation.get("threat_model") or (attack.get("norm") if isinstance(attack, dict) else None)
    if norm == "Linf" and isinstance(card.get("eps"), str):
        try:
            check_eps(parse_eps(card["eps"]), "Linf")
        except ThreatModelError as err:
            out.append(("$.eps", str(err)))
    out += _per_class_errors(card)
    cc = card.get("cross_class")
    if not isinstance(cc, dict):
        return out
    blocks = [("$.cross_class", cc)]
    for key in ("pgd", "autoattack"):
        if isinstance(cc.get(key), dict):
            blocks.append((f"$.cross_class.{key}", cc[key]))
    for where, block in blocks:
        k = len(block["class_names"])
        for key in ("matrix", "clean_matrix"):
            m = block.get(key)
            if m is None:
                continue
            if isinstance(m, dict):  # packed (cards.matrices): it must decode to k x k
                try:
                    n = matrix_array(m).shape[0]
                except MatrixFormatError as err:
                    out.append((f"{where}.{key}", str(err)))
                    continue
                if n != k:
                    out.append((f"{where}.{key}", f"is {n}x{n} but class_names has {k} names"))
                continue
            if len(m) != k:
                out.append((f"{where}.{key}", f"has {len(m)} rows but class_names has {k} names"))
                continue
            for i, row in enumerate(m):
                if len(row) != k:
                    out.append((f"{where}.{key}[{i}]", f"has {len(row)} entries, expected {k}"))
                    break
        for key in ("per_class_counts", "per_class_scores"):
            v = block.get(key)
            if v is not None and len(v) != k:
                out.append((f"{where}.{key}", f"has {len(v)} entries, expected {k} (one per class)"))
    return out


def _per_class_errors(card: dict) -> list[tuple[str, str]]:
    """Every per-class list of a ``per_class`` block has one entry per class name (the board draws
    one bar per name and reads the lists at that index)."""
    out: list[tuple[str, str]] = []
    cc = card.get("cross_class") if isinstance(card.get("cross_class"), dict) else {}
    holders = [("$.evaluation", card.get("evaluation")), ("$.cross_class", cc),
               *((f"$.cross_class.{k}", cc.get(k)) for k in ("pgd", "autoattack"))]
    for where, holder in holders:
        block = holder.get("per_class") if isinstance(holder, dict) else None
        if not isinstance(block, dict):
            continue
        k = len(block["class_names"]) if isinstance(block.get("class_names"), list) else 0
        for key in ("counts", "clean_accuracy", "robust_accuracy", "robust_interval"):
            v = block.get(key)
            if isinstance(v, list) and len(v) != k:
                out.append((f"{where}.per_class.{key}", f"has {len(v)} entries, expected {k} (one per "
                                                        "name in class_names)"))
    return out


def validate_card(card: Any, source: str = "<card>") -> None:
    """Raise :class:`CardError` ``"<source>: field <path>: <problem>"`` unless ``card`` is valid.

    Up to three problems are listed; the first names the most specific field.
    """
    if not isinstance(card, dict):
        raise CardError(f"{source}: field $: a card must be a JSON object, got {type(card).__name__}")
    found = _errors(card)
    if found:
        shown = "; ".join(f"field {p}: {m}" for p, m in found[:3])
        more = f" (+{len(found) - 3} more)" if len(found) > 3 else ""
        raise CardError(f"{source}: {shown}{more}")


def card_problems(card: Any) -> list[str]:
    """Every problem of ``card`` as ``"<path>: <message>"`` strings (empty when valid)."""
    if not isinstance(card, dict):
        return [f"$: a card must be a JSON object, got {type(card).__name__}"]
    return [f"{p}: {m}" for p, m in _errors(card)]
