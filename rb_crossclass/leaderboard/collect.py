"""Extended leaderboards: every official RobustBench entry plus our cross-class columns.

Cards come from one or more folders. For each folder ``DIR``:

- when ``DIR/<dataset>/<threat_model>/`` exists (RobustBench's ``model_info`` layout, also the
  layout of ``model_zoo/``), every ``*.json`` file in it is a card of that board;
- otherwise ``DIR/*.json`` is read and a card joins the board when its ``dataset`` matches and
  its ``evaluation.threat_model`` (when it has one) matches (so ``rb-crossclass evaluate --out
  DIR`` folders can be passed as they are).

``eval.json``, ``summary.json`` and ``leaderboard.json`` (outputs of rb-crossclass itself) are
skipped; every other ``*.json`` file must be a valid card.

**File order** is the folders in the order given, and within one folder the file names sorted
by Python's ``sorted`` (code points). The model ID of a card is its file name without ``.json``
(RobustBench's rule).

**Merge**: cards with the same model ID form one entry. The RobustBench keys come from the first
card without measured blocks (an official card) when there is one, else from the first card; the
measured blocks (``cross_class``, ``evaluation``, ``training``) come from the one card carrying
them. Two cards with measured blocks for one ID, or two official cards that differ, are an
error. An entry takes the position of its first card in file order.

**Order** (``sort_by="robust"``, the default) is RobustBench's: descending by the first present
of (``external``, ``autoattack_acc``) as floats; Python's stable sort keeps file order among ties
(RobustBench sorts the result of ``Path.glob``, whose order the file system decides; we fix it to
sorted names). ``clean`` sorts by ``clean_acc``, ``cas`` / ``fsi`` by those cross-class metrics,
all descending, entries lacking the value last in file order.

Building is atomic: every card is read and checked first, the outputs are written into a
temporary folder beside the target, and only then swapped in, so a bad card leaves the previous
output untouched.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cards import load_card
from ..core.errors import RBCrossclassError

ROBUST_KEYS = ("external", "autoattack_acc")
MEASURED_BLOCKS = ("cross_class", "evaluation", "training")
SORT_CHOICES = ("robust", "clean", "cas", "fsi")
# JSON outputs of rb-crossclass evaluate/train/leaderboard that may sit beside cards: not cards.
NOT_CARDS = frozenset({"eval.json", "summary.json", "leaderboard.json"})


class LeaderboardError(RBCrossclassError, ValueError):
    """A card or folder cannot be used for a leaderboard; the message names the file."""


@dataclass
class CardFile:
    """A card read from disk; ``order`` is its position in file order."""

    path: Path
    card: dict
    order: int

    @property
    def model_id(self) -> str:
        return self.path.stem

    @property
    def measured(self) -> bool:
        return any(k in self.card for k in MEASURED_BLOCKS)


def card_paths(dirs: Sequence[str | os.PathLike], dataset: str, threat_model: str) -> list[tuple[Path, bool]]:
    """Card files in file order, each with whether it came from a flat folder (needs filtering)."""
    out: list[tuple[Path, bool]] = []
    for d in dirs:
        folder = Path(d)
        if not folder.is_dir():
            raise LeaderboardError(f"cards folder not found: {folder}")
        nested = folder / dataset / threat_model
        flat = not nested.is_dir()
        found = sorted((folder if flat else nested).glob("*.json"), key=lambda p: p.name)
        out.extend((p, flat) for p in found if p.name not in NOT_CARDS)
    return out


def collect_cards(dirs: Sequence[str | os.PathLike], dataset: str, threat_model: str) -> list[CardFile]:
    """Read and check every card of the board, in file order. Raises on the first bad card."""
    files: list[CardFile] = []
    for path, flat in card_paths(dirs, dataset, threat_model):
        card = load_card(path)
        evaluation = card.get("evaluation")
        card_tm = evaluation.get("threat_model") if isinstance(evaluation, dict) else None
        if flat:
            if card.get("dataset") != dataset or (card_tm is not None and card_tm != threat_model):
                continue
        else:
            if card.get("dataset") != dataset:
                raise LeaderboardError(
                    f"card {path}: field 'dataset' is {card.get('dataset')!r} but the card lies in "
                    f"the {dataset}/{threat_model} folder"
                )
            if card_tm is not None and card_tm != threat_model:
                raise LeaderboardError(
                    f"card {path}: field 'evaluation.threat_model' is {card_tm!r} but the card lies "
                    f"in the {dataset}/{threat_model} folder"
                )
        check_card_fields(card, path)
        files.append(CardFile(path, card, len(files)))
    return files


def _number(card: dict, key: str, path: Path | str) -> float | None:
    """``card[key]`` as a float (RobustBench stores numbers as strings); ``None`` when absent."""
    if key not in card or card[key] is None:
        return None
    value = card[key]
    if isinstance(value, bool):
        raise LeaderboardError(f"card {path}: field {key!r} is a boolean, not a number")
    try:
        out = float(value)
    except (TypeError, ValueError) as err:
        raise LeaderboardError(f"card {path}: field {key!r} is {value!r}, not a number") from err
    if not math.isfinite(out):
        raise LeaderboardError(f"card {path}: field {key!r} is {value!r}, not a finite number")
    return out


def _block_number(block: Any, key: str, path: Path | str, block_name: str) -> float | None:
    if not isinstance(block, dict) or block.get(key) is None:
        return None
    value = block[key]
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise LeaderboardError(f"card {path}: field '{block_name}.{key}' is {value!r}, not a number")
    try:
        out = float(value)
    except ValueError as err:
        raise LeaderboardError(f"card {path}: field '{block_name}.{key}' is {value!r}, not a number") from err
    if not math.isfinite(out):
        raise LeaderboardError(f"card {path}: field '{block_name}.{key}' is {value!r}, not finite")
    return out


def check_card_fields(card: dict, path: Path | str) -> None:
    """The fields a leaderboard reads: present, of the right kind. Errors name file and field."""
    for key in ("name", "link", "architecture", "venue"):
        if key in card and card[key] is not None and not isinstance(card[key], str):
            raise LeaderboardError(f"card {path}: field {key!r} must be a string, got {card[key]!r}")
    if not isinstance(card.get("name"), str):
        raise LeaderboardError(f"card {path}: field 'name' is missing")
    for key in ("clean_acc", *ROBUST_KEYS):
        _number(card, key, path)
    if all(card.get(k) is None for k in ROBUST_KEYS):
        raise LeaderboardError(f"card {path}: field 'autoattack_acc' is missing (and no 'external')")
    for key in MEASURED_BLOCKS:
        if key in card and not isinstance(card[key], dict):
            raise LeaderboardError(f"card {path}: field {key!r} must be an object")
    for key in ("cas", "normalized_cas", "fsi"):
        _block_number(card.get("cross_class"), key, path, "cross_class")


# --------------------------------------------------------------------------- merging
@dataclass
class Entry:
    """One row: the RobustBench card of a model plus our measured blocks (when any)."""

    model_id: str
    card: dict
    measured: dict = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    official: bool = False
    order: int = 0

    @property
    def ours(self) -> bool:
        return bool(self.measured)

    def number(self, key: str) -> float | None:
        return _number(self.card, key, self.files[0] if self.files else self.model_id)

    @property
    def robust_key(self) -> float | None:
        """RobustBench's sort key: the first present of (external, autoattack_acc)."""
        for key in ROBUST_KEYS:
            if key in self.card and self.card[key] is not None:
                return self.number(key)
        return None

    def cross(self, key: str) -> float | None:
        return _block_number(self.measured.get("cross_class"), key, self.model_id, "cross_class")


def merge_cards(files: Iterable[CardFile]) -> list[Entry]:
    """One entry per model ID, in file order of first appearance (see the module docstring)."""
    groups: dict[str, list[CardFile]] = {}
    for f in files:
        groups.setdefault(f.model_id, []).append(f)
    entries: list[Entry] = []
    for model_id, group in groups.items():
        official = [f for f in group if not f.measured]
        measured = [f for f in group if f.measured]
        if len(measured) > 1:
            raise LeaderboardError(
                f"model {model_id!r} has measured blocks in more than one card: "
                f"{', '.join(str(f.path) for f in measured)}; pass only one of them"
            )
        for other in official[1:]:
            if other.card != official[0].card:
                raise LeaderboardError(
                    f"model {model_id!r} has two different official cards: {official[0].path} and "
                    f"{other.path}"
                )
        base = official[0] if official else measured[0]
        card = {k: v for k, v in base.card.items() if k not in MEASURED_BLOCKS}
        blocks = {k: measured[0].card[k] for k in MEASURED_BLOCKS if measured and k in measured[0].card}
        entries.append(Entry(
            model_id=model_id, card=card, measured=blocks,
            files=[str(f.path) for f in group], official=bool(official),
            order=min(f.order for f in group),
        ))
    entries.sort(key=lambda e: e.order)
    return entries


def order_entries(entries: Sequence[Entry], sort_by: str = "robust") -> list[Entry]:
    """Entries in board order: descending by the chosen value, file order among ties, missing last."""
    if sort_by not in SORT_CHOICES:
        raise LeaderboardError(f"--sort-by must be one of {', '.join(SORT_CHOICES)}, got {sort_by!r}")
    getters = {
        "robust": lambda e: e.robust_key,
        "clean": lambda e: e.number("clean_acc"),
        "cas": lambda e: e.cross("cas"),
        "fsi": lambda e: e.cross("fsi"),
    }
    get = getters[sort_by]
    by_file = sorted(entries, key=lambda e: e.order)
    present = [e for e in by_file if get(e) is not None]
    missing = [e for e in by_file if get(e) is None]
    return sorted(present, key=get, reverse=True) + missing
