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

**Upstream slips**: in RobustBench's folder layout the folder decides the board, as in RobustBench
itself. An official card (no measured blocks) whose ``dataset`` disagrees with its folder, or that
lacks the board's accuracy field, is kept (or skipped) with a warning recorded in
``leaderboard.json``; a card we measured that disagrees is an error.

**Order** (``sort_by="robust"``, the default) is RobustBench's: descending by the first present
of the board's ranking fields (:func:`rb_crossclass.core.threat.ranking_fields`: ``external``
then ``autoattack_acc`` on ℓ∞/ℓ2 boards, ``corruptions_acc`` on corruption boards) as floats;
Python's stable sort keeps file order among ties (RobustBench sorts the result of ``Path.glob``,
whose order the file system decides; we fix it to sorted names). ``clean`` sorts by
``clean_acc``, ``cas`` / ``fsi`` by those cross-class metrics, all descending, entries lacking the
value last in file order.

Building is atomic: every card is read and checked first, the outputs are written into a
temporary folder beside the target, and only then swapped in, so a bad card leaves the previous
output untouched.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cards import load_card
from ..core.errors import RBCrossclassError
from ..core.threat import check_threat_model, ranking_fields

MEASURED_BLOCKS = ("cross_class", "evaluation", "training")
SORT_CHOICES = ("robust", "clean", "cas", "fsi")
# JSON outputs of rb-crossclass evaluate/train/leaderboard that may sit beside cards: not cards.
NOT_CARDS = frozenset({"eval.json", "summary.json", "leaderboard.json"})


class LeaderboardError(RBCrossclassError, ValueError):
    """A card or folder cannot be used for a leaderboard; the message names the file."""


@dataclass
class CardFile:
    """A card read from disk; ``order`` is its position in file order; ``warnings``: upstream
    slips noticed while reading it."""

    path: Path
    card: dict
    order: int
    warnings: list[str] = field(default_factory=list)

    @property
    def model_id(self) -> str:
        return self.path.stem

    @property
    def measured(self) -> bool:
        return any(k in self.card for k in MEASURED_BLOCKS)

    def scores_only(self, fields: Sequence[str]) -> bool:
        """Our cross-class scores without an evaluation or any of the board's accuracy ``fields``
        (a training run's card, a sweep without ``--autoattack``)."""
        return (self.measured and "evaluation" not in self.card
                and all(self.card.get(f) is None for f in fields))


ZOO_CARDS = "zoo:"
"""A ``--cards`` value naming our model zoo's cards wherever the zoo is (``./model_zoo``,
``$RB_CROSSCLASS_ZOO`` or the zoo shipped with the package), like the model source ``zoo:<Name>``."""


def card_paths(dirs: Sequence[str | os.PathLike], dataset: str, threat_model: str) -> list[tuple[Path, bool]]:
    """Card files in file order, each with whether it came from a flat folder (needs filtering).
    A folder given as :data:`ZOO_CARDS` is the model zoo's folder."""
    out: list[tuple[Path, bool]] = []
    for d in dirs:
        if str(d) == ZOO_CARDS:
            from ..models.zoo_catalog import zoo_root

            d = zoo_root()
        folder = Path(d)
        if not folder.is_dir():
            raise LeaderboardError(f"cards folder not found: {folder}")
        nested = folder / dataset / threat_model
        flat = not nested.is_dir()
        found = sorted((folder if flat else nested).glob("*.json"), key=lambda p: p.name)
        out.extend((p, flat) for p in found if p.name not in NOT_CARDS)
    return out


def collect_cards(dirs: Sequence[str | os.PathLike], dataset: str, threat_model: str) -> list[CardFile]:
    """Read and check every card of the board, in file order. Raises on the first card that is
    invalid or, if we measured it, that does not belong to the board; upstream slips of official
    cards become warnings on the returned :class:`CardFile`."""
    check_threat_model(threat_model)
    fields = ranking_fields(threat_model)
    files: list[CardFile] = []
    for path, flat in card_paths(dirs, dataset, threat_model):
        card = load_card(path)
        measured = any(k in card for k in MEASURED_BLOCKS)
        evaluation = card.get("evaluation")
        card_tm = evaluation.get("threat_model") if isinstance(evaluation, dict) else None
        if flat:
            if card.get("dataset") != dataset or (card_tm is not None and card_tm != threat_model):
                continue
        problems = _board_problems(card, dataset, threat_model, card_tm, fields, flat)
        if measured and "evaluation" not in card and all(card.get(f) is None for f in fields):
            files.append(CardFile(path, card, len(files)))  # scores only: ranked by an official card
            continue
        if problems and measured:
            raise LeaderboardError(f"card {path}: {problems[0]}")
        if any("no field" in p for p in problems):  # an official card the board cannot rank: skip it
            files.append(CardFile(path, card, -1, [f"{path}: skipped, {p}" for p in problems]))
            continue
        files.append(CardFile(path, card, len(files), [f"{path}: {p} (the folder decides, as in RobustBench)"
                                                        for p in problems]))
    return files


def _board_problems(card: dict, dataset: str, threat_model: str, card_tm: str | None,
                    fields: tuple[str, ...], flat: bool) -> list[str]:
    out = []
    if not flat and card.get("dataset") != dataset:
        out.append(f"field 'dataset' is {str(card.get('dataset'))[:40]!r} but the card lies in the "
                   f"{dataset}/{threat_model} folder")
    if not flat and card_tm is not None and card_tm != threat_model:
        out.append(f"field 'evaluation.threat_model' is {card_tm!r} but the card lies in the "
                   f"{dataset}/{threat_model} folder")
    if all(card.get(f) is None for f in fields):
        out.append(f"no field {' or '.join(repr(f) for f in fields)}, which a {threat_model} board ranks by")
    return out


def _number(value: Any) -> float | None:
    """A card's number (RobustBench stores them as strings; the schema has checked their form)."""
    return None if value is None else float(value)


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
    ranking: tuple[str, ...] = ("external", "autoattack_acc")  # the board's ranking fields

    @property
    def ours(self) -> bool:
        return bool(self.measured)

    def number(self, key: str) -> float | None:
        return _number(self.card.get(key))

    @property
    def robust_key(self) -> float | None:
        """RobustBench's sort key: the first present of the board's ranking fields."""
        for key in self.ranking:
            if self.card.get(key) is not None:
                return self.number(key)
        return None

    def _scores_on(self, attack: str) -> dict | None:
        """The ``cross_class`` block measured on ``attack``'s examples: the block itself when its
        ``attack.name`` is ``attack``, else its sub-block of that name (``pgd``, ``autoattack``)."""
        block = self.measured.get("cross_class")
        if not isinstance(block, dict):
            return None
        if (block.get("attack") or {}).get("name") == attack:
            return block
        return block.get(attack) if isinstance(block.get(attack), dict) else None

    @property
    def protocol_scores(self) -> dict | None:
        """The cross-class scores of the paper's PGD protocol: the card's ``cross_class`` block, or
        its legacy ``pgd`` sub-block (cards whose top level held AutoAttack's examples)."""
        return self._scores_on("pgd")

    @property
    def autoattack_scores(self) -> dict | None:
        """The cross-class scores of AutoAttack's own examples, when measured."""
        return self._scores_on("autoattack")

    def cross(self, key: str) -> float | None:
        """A number of the PGD-protocol scores (``cas``, ``normalized_cas``, ``fsi``)."""
        block = self.protocol_scores
        return _number(block.get(key)) if block is not None else None


def merge_cards(files: Iterable[CardFile], threat_model: str = "Linf") -> list[Entry]:
    """One entry per model ID, in file order of first appearance (see the module docstring);
    cards skipped while collecting (``order < 0``) are left out, and so is a card of scores only
    (no evaluation, no accuracy the board ranks by) without an official card of the same model: it
    gets a warning instead of a rank."""
    fields = ranking_fields(threat_model)
    groups: dict[str, list[CardFile]] = {}
    for f in files:
        if f.order >= 0:
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
        if not official and measured[0].scores_only(fields):
            measured[0].warnings.append(
                f"{measured[0].path}: skipped, cross-class scores without an AutoAttack evaluation and "
                "no official card of this model to rank it by (run rb-crossclass evaluate, or sweep "
                "with --autoattack)")
            continue
        base = official[0] if official else measured[0]
        card = {k: v for k, v in base.card.items() if k not in MEASURED_BLOCKS}
        blocks = {k: measured[0].card[k] for k in MEASURED_BLOCKS if measured and k in measured[0].card}
        entries.append(Entry(
            model_id=model_id, card=card, measured=blocks,
            files=[str(f.path) for f in group], official=bool(official),
            order=min(f.order for f in group), ranking=ranking_fields(threat_model),
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
