"""Values a person writes as text (command-line flags, YAML fields), checked once here.

Each function takes the text as written and returns the value, or raises :class:`ValueTextError`
(an :class:`~rb_crossclass.core.errors.RBCrossclassError`: one line saying what was expected and
what was given, the given text cut to a few dozen characters). The CLI turns them into argparse
types (``rb_crossclass.commands.common``); Python callers use them directly. Torch-free.
"""

from __future__ import annotations

import math
import os
import re

from .errors import RBCrossclassError
from .io import dangerous_output_dir


class ValueTextError(RBCrossclassError, ValueError):
    """A value written as text is malformed or out of range."""


def parse_int(text: str, minimum: int | None = None) -> int:
    """A whole number in ASCII digits, optionally signed, ``>= minimum`` when given.

    ``int()`` alone also takes other scripts' digits ('８') and underscores ('1_0'); these are refused.
    """
    if not re.fullmatch(r"\s*[+-]?[0-9]{1,30}\s*", text):
        raise ValueTextError(f"must be a whole number in ASCII digits, got {text[:40]!r}")
    value = int(text)
    if minimum is not None and value < minimum:
        raise ValueTextError(f"must be >= {minimum}, got {value}")
    return value


def parse_non_negative_float(text: str) -> float:
    """A finite number ``>= 0`` (e.g. a fraction of a GPU)."""
    try:
        value = float(text)
    except ValueError:
        raise ValueTextError(f"must be a number, got {text[:40]!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueTextError(f"must be a number >= 0, got {text[:40]!r}")
    return value


def parse_percent(text: str) -> str:
    """An accuracy in percent, 0-100 (a trailing ``%`` allowed), in RobustBench's card form with two
    decimals: ``"53.4"`` → ``"53.40"``."""
    number = text.strip().rstrip("%")
    if not re.fullmatch(r"[0-9]{1,3}(\.[0-9]*)?|\.[0-9]+", number):
        raise ValueTextError(f"must be a percentage such as 53.42, got {text[:40]!r}")
    value = float(number)
    if not 0.0 <= value <= 100.0:
        raise ValueTextError(f"must be between 0 and 100 (a percentage), got {text[:40]!r}")
    return f"{value:.2f}"


def parse_venue(text: str) -> str:
    """A venue as RobustBench's cards write it, ``Venue Year`` (``ICML 2025``; its bibtex tool takes
    the year from the last word), whitespace folded."""
    words = text.split()
    if not words or not re.fullmatch(r"(19|20)\d\d", words[-1].strip(",.")):
        raise ValueTextError("must end with the year, like 'ICML 2025' (RobustBench's form), "
                             f"got {text[:60]!r}")
    return " ".join(words)


def check_dataset_label(text: str) -> str:
    """A dataset name as cards write it: 1-32 lower-case letters, digits and ``_``."""
    if not re.fullmatch(r"[a-z0-9_]{1,32}", text):
        raise ValueTextError(f"must be 1-32 lower-case letters, digits or '_', got {text[:40]!r}")
    return text


def check_output_dir_path(text: str) -> str:
    """A folder to write into: not empty, not an existing file, not the file system's root, a system
    folder or the home folder itself (:func:`~rb_crossclass.core.io.dangerous_output_dir`)."""
    if not text.strip():
        raise ValueTextError("is empty: name a folder")
    danger = dangerous_output_dir(text)
    if danger:
        raise ValueTextError(f"{text[:200]} is {danger}, never an output folder: name a folder of its own "
                             "(e.g. ./out)")
    if os.path.exists(text) and not os.path.isdir(text):
        raise ValueTextError(f"{text[:200]} exists and is not a folder")
    return text


def check_output_file_path(text: str) -> str:
    """A file to write: not empty, not an existing folder."""
    if not text.strip():
        raise ValueTextError("is empty: name a file")
    if os.path.isdir(text):
        raise ValueTextError(f"{text[:200]} is a folder, not a file")
    return text
