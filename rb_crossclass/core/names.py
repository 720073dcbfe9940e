"""Model IDs: the names that become file names (cards, zoo entries, sweep outputs).

RobustBench's rule is that a model's ID is its card's file name. :func:`check_model_id` accepts
RobustBench's characters (letters, digits, ``_``, ``-``, ``.``, ``+``; starting with a letter or
digit; at most :data:`MAX_MODEL_ID` characters), so an ID can never name a path outside its
folder (``..``, ``/``), a hidden file, or a file name the file system refuses.
"""

from __future__ import annotations

import re

from .errors import RBCrossclassError

MAX_MODEL_ID = 128
MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$"
RESERVED_IDS = frozenset({"eval", "summary", "leaderboard", "plan", "sweep", "crossclass"})


class ModelIdError(RBCrossclassError, ValueError):
    """A model ID that cannot be used as a file name; the message says which characters are allowed."""


def check_model_id(name: str, what: str = "model ID") -> str:
    """``name`` when it is a valid model ID that does not collide with our own output files
    (:data:`RESERVED_IDS`), else :class:`ModelIdError`."""
    if not isinstance(name, str) or not re.match(MODEL_ID_PATTERN, name) or name.endswith("."):
        shown = repr(name) if len(repr(name)) <= 60 else repr(name)[:55] + "...'"
        raise ModelIdError(
            f"{what} {shown} is not a model ID: use 1 to {MAX_MODEL_ID} letters, digits, '_', '-', '.' "
            "or '+', starting with a letter or digit (RobustBench's naming, e.g. Wong2020Fast)"
        )
    if name in RESERVED_IDS:
        raise ModelIdError(f"{what} {name!r} is reserved for rb-crossclass's own output files "
                           f"({', '.join(sorted(RESERVED_IDS))}); choose another")
    return name


def model_id_from_source(source: str) -> str:
    """A default model ID from a model source (``timm:resnet18`` → ``resnet18``,
    ``py:models.py:build`` → ``build``)."""
    rest = source.rsplit(":", 1)[-1] if ":" in source else source
    rest = rest.replace("\\", "/").rsplit("/", 1)[-1]
    rest = rest[:-3] if rest.endswith(".py") else rest
    name = re.sub(r"[^A-Za-z0-9_.+-]+", "_", rest).strip("._+-")[:MAX_MODEL_ID] or "model"
    return name if name not in RESERVED_IDS else f"{name}_model"
