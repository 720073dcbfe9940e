"""Reading and writing card files: strict JSON (no NaN/Infinity), validated, written atomically."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..core.io import atomic_write_text
from .matrices import compact_matrices
from .schema import CardError, depth_problem, validate_card

MAX_CARD_BYTES = 32 * 1024 * 1024  # an ImageNet card (K = 1000, matrices packed) is ~16 MB


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON (write null for missing numbers)")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text[:40]} is too large (it reads as infinity)")
    return value


def _decode(text: str, source: str) -> Any:
    """Card JSON text -> Python value, not yet validated. Refused: NaN / Infinity literals, numbers
    that overflow to infinity (``1e999``), nesting too deep to decode, and strings that are not
    valid Unicode (lone surrogates such as ``"\ud800"``)."""
    if len(text) > MAX_CARD_BYTES:
        raise CardError(f"{source}: field $: {len(text)} characters, more than a card may hold "
                        f"({MAX_CARD_BYTES})")
    try:
        card = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as err:
        raise CardError(f"{source}: field $: not valid JSON ({err.msg} at line {err.lineno}, "
                        f"column {err.colno})") from err
    except RecursionError as err:
        raise CardError(f"{source}: field $: nested too deeply to be a card") from err
    except ValueError as err:
        raise CardError(f"{source}: field $: {err}") from err
    deep = depth_problem(card)
    if deep:  # before anything recursive (json.dumps below, the validator, repr in messages)
        raise CardError(f"{source}: field {deep[0]}: {deep[1]}")
    try:
        json.dumps(card, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as err:
        raise CardError(f"{source}: field $: holds a string that is not valid Unicode "
                        f"(an unpaired surrogate such as \\ud800)") from err
    except RecursionError as err:  # pragma: no cover - decoding has the same limit
        raise CardError(f"{source}: field $: nested too deeply to be a card") from err
    return card


def parse_card(text: str, source: str = "<card>") -> dict:
    """Parse and validate card JSON text."""
    card = _decode(text, source)
    validate_card(card, source)
    return card


def read_card_json(path: str | os.PathLike) -> Any:
    """The JSON value in the file at ``path``, not yet validated; :class:`CardError` when the file
    cannot be read or is not JSON (the message starts with the path)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise CardError(f"{path}: card file not found") from err
    except (OSError, UnicodeDecodeError) as err:
        raise CardError(f"{path}: cannot be read as UTF-8 text ({err})") from err
    return _decode(text, str(path))


def load_card(path: str | os.PathLike) -> dict:
    """Read and validate the card at ``path``; the dict keeps the file's key order."""
    card = read_card_json(path)
    validate_card(card, str(path))
    return card


def dumps_card(card: Mapping) -> str:
    """The canonical text of a card: 2-space indented JSON, non-ASCII kept, trailing newline."""
    try:
        return json.dumps(card, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    except ValueError as err:  # NaN / inf
        raise CardError(f"card holds NaN or infinity, which JSON cannot store: {err}") from err


def write_card(card: Mapping, path: str | os.PathLike) -> None:
    """Validate ``card`` and write it to ``path`` atomically (a crash leaves the old file). Matrices
    of more than ``INLINE_MAX_K`` classes are packed (:mod:`.matrices`); a card our own reader
    would refuse (over :data:`MAX_CARD_BYTES`) is never written."""
    card = compact_matrices(dict(card))
    validate_card(card, str(path))
    text = dumps_card(card)
    if len(text) > MAX_CARD_BYTES:
        raise CardError(f"{path}: field $: the card would be {len(text)} characters, more than a card may "
                        f"hold ({MAX_CARD_BYTES}); not written")
    atomic_write_text(path, text)


def normalized_json(card: Any) -> str:
    """Order-independent text of a card, for comparing cards (``json.dumps(sort_keys=True)``)."""
    return json.dumps(card, sort_keys=True, ensure_ascii=False)


def iter_card_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files named by ``paths``; folders are searched recursively for ``*.json``."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(p.rglob("*.json")))
        else:
            out.append(p)
    return out
