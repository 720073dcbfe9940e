"""What ``rb-crossclass zoo`` prints, as text: the list table, one entry's fields, and the
summaries of adding an entry and attaching a card. Nothing here prints."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from ..core.formatting import format_number, text_table
from ..models.zoo_catalog import ZooEntry, checkpoint_file, find_entry, list_entries, zoo_root
from .authoring import card_numbers

LIST_HEADER = ("name", "dataset", "threat", "architecture", "recipe", "clean", "AA", "CAS", "FSI", "n")


def _fmt(value: Any, digits: int = 2) -> str:
    return format_number(value, f".{digits}f" if isinstance(value, float) else "")


def list_rows(root: str | os.PathLike | None = None, dataset: str | None = None,
              threat_model: str | None = None) -> list[dict[str, Any]]:
    """One dict per zoo entry: its YAML summary and its card's headline numbers (:func:`card_numbers`)."""
    return [{**e.summary(), **card_numbers(e)} for e in list_entries(root, dataset, threat_model)]


def list_table(rows: list[Mapping[str, Any]], root: str | os.PathLike | None = None) -> str:
    """The aligned table of :func:`list_rows` (``—`` for a missing number), then ``N entries in ROOT``."""
    table = text_table(LIST_HEADER, [
        (r["name"], r["dataset"], r["threat_model"], r["architecture"], str(r["recipe"]),
         _fmt(r.get("clean_acc")), _fmt(r.get("autoattack_acc")), _fmt(r.get("cas")),
         _fmt(r.get("fsi"), 3), _fmt(r.get("n_examples"))) for r in rows])
    return f"{table}\n{len(rows)} entries in {zoo_root(root)}"


def show_text(entry: ZooEntry, verify: bool = True) -> str:
    """One entry as ``key  value`` lines: its YAML fields and recipe, with ``verify`` the sha256
    check of its checkpoint (raises :class:`ZooChecksumError` on a mismatch), its card's numbers."""
    info: dict[str, Any] = entry.summary()
    info["recipe"] = entry.recipe
    if verify:
        path = checkpoint_file(entry)
        info["checkpoint_verified"] = f"sha256 ok ({path.stat().st_size / 1e6:.2f} MB)"
    info.update(card_numbers(entry))
    width = max(map(len, info))
    return "\n".join(f"{k.ljust(width)}  " + str(json.dumps(v) if isinstance(v, (dict, list))
                                                 else f"{v:.4g}" if isinstance(v, float) else v)
                     for k, v in info.items())


def add_summary(entry: ZooEntry) -> str:
    """What :func:`add_entry` made (YAML, architecture, recipe, weights and sha256) and what comes next."""
    size = entry.checkpoint_path.stat().st_size / 1e6
    return (f"added {entry.name}: {entry.yaml_path} ({entry.architecture}, {entry.recipe.get('name')}), "
            f"weights {entry.checkpoint_path.name} {size:.2f} MB sha256 {entry.sha256[:16]}...\n"
            f"next: rb-crossclass evaluate --model zoo:{entry.name} ... then zoo attach-card")


def attach_summary(name: str, card: str | os.PathLike, path: str | os.PathLike, *,
                   root: str | os.PathLike | None = None, dataset: str | None = None,
                   threat_model: str | None = None, fields: Mapping[str, str] | None = None,
                   footnote: str | None = None) -> str:
    """What :func:`attach_card` did: the attached card's numbers, the blocks added (``fields`` and
    ``footnote`` as given to it), the file written and what comes next."""
    numbers = card_numbers(find_entry(name, root, dataset, threat_model))
    changed = ", ".join(["training block (from the YAML)",
                         *(f"{k} (--{k.replace('name', 'title')})" for k in fields or {}),
                         *(["footnote"] if footnote is not None else [])])
    return (f"attached {card} to zoo entry {name}: clean {_fmt(numbers.get('clean_acc'))} %, "
            f"AutoAttack {_fmt(numbers.get('autoattack_acc'))} %, CAS {_fmt(numbers.get('cas'))}, "
            f"n={_fmt(numbers.get('n_examples'))}\nadded: {changed}\nwrote {path}\n"
            f"next: rb-crossclass zoo show {name}; rebuild boards with rb-crossclass leaderboard")
