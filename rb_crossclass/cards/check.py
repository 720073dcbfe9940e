"""Checking many card files at once (``rb-crossclass card validate``): every problem of every
file, one file's failure never stopping the check of the others."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .files import iter_card_files, read_card_json
from .schema import CardError, card_problems

__all__ = ["check_card_files"]


def check_card_files(paths: Sequence[str | os.PathLike]) -> list[tuple[Path, list[str]]]:
    """``(file, problems)`` for each card file in ``paths`` (folders are searched for
    ``*.json``), in :func:`~rb_crossclass.cards.iter_card_files`'s order; ``problems`` are lines
    naming the file and the field (JSON path), empty for a valid card. Raises
    :class:`CardError` when ``paths`` hold no card file."""
    files = iter_card_files(paths)
    if not files:
        raise CardError(f"no card files found in {' '.join(str(p) for p in paths)}")
    checked = []
    for path in files:
        try:
            problems = [f"{path}: field {p}" for p in card_problems(read_card_json(path))]
        except CardError as err:  # unreadable or not JSON: the message starts with the path
            problems = [str(err)]
        except Exception as err:  # noqa: BLE001 - one file must never stop the check of the others
            problems = [f"{path}: could not be checked ({type(err).__name__}: {str(err)[:200]})"]
        checked.append((path, problems))
    return checked
