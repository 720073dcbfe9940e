"""Building cards from measurements: RobustBench's keys with RobustBench's types, then our blocks."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..core.errors import RBCrossclassError
from ..core.io import jsonable
from ..core.threat import check_norm, format_eps
from .matrices import INLINE_MAX_K, MATRIX_KEYS, pack_matrix
from .schema import CardError, validate_card

#: Keys of an official RobustBench card, in RobustBench's order (written first, in this order).
ROBUSTBENCH_KEYS = (
    "link", "name", "authors", "additional_data", "number_forward_passes", "dataset", "venue",
    "architecture", "eps", "clean_acc", "reported", "autoattack_acc", "corruptions_acc",
    "corruptions_mce", "corruptions_acc_3d", "corruptions_mce_3d", "external", "unreliable",
    "footnote",
)
BLOCKS = ("cross_class", "evaluation", "training")


def format_percent(fraction: float) -> str:
    """Accuracy in [0,1] -> RobustBench's percent string with two decimals (``0.5342 -> '53.42'``)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"accuracy must be a fraction in [0,1], got {fraction}")
    return f"{100.0 * fraction:.2f}"


def cross_class_block(score: Any, attack: str | dict) -> dict:
    """The ``cross_class`` block from a scoring result (``ScoreResult`` or its ``to_dict()``).

    ``attack`` names how the adversarial examples were made (``"autoattack"``, ``"pgd"``) or is a
    dict with a ``name`` key and its settings. NaN (empty classes) becomes ``null``. Matrices of
    more than ``INLINE_MAX_K`` classes are packed (:mod:`.matrices`; ``matrix_array`` reads both);
    their adversarial confusion counts are left out (the confusion correlation is kept).
    """
    d = score.to_dict() if hasattr(score, "to_dict") else dict(score)
    attack_info = dict(attack) if isinstance(attack, Mapping) else {"name": str(attack)}
    block = {
        "cas": d["cas"],
        "normalized_cas": d.get("normalized_cas"),
        "fsi": d.get("fsi"),
        "clean_cas": d.get("clean_cas"),
        "clean_normalized_cas": d.get("clean_normalized_cas"),
        "clean_fsi": d.get("clean_fsi"),
        "matrix": d["matrix"],
        "clean_matrix": d.get("clean_matrix"),
        "class_names": list(d["class_names"]),
        "attack": attack_info,
        "n_examples": int(d["n_examples"]),
    }
    for key in ("per_class_counts", "per_class_scores", "top_pairs", "robust_accuracy", "clean_accuracy",
                "per_class", "intervals", "adversarial_confusion", "confusion_correlation"):
        if d.get(key) is not None:
            block[key] = d[key]
    block = jsonable(block)
    for key in MATRIX_KEYS:
        if isinstance(block.get(key), list) and len(block[key]) > INLINE_MAX_K:
            block[key] = pack_matrix(block[key])
    if len(block["class_names"]) > INLINE_MAX_K:  # K×K counts would dominate the card: the correlation stays
        block.pop("adversarial_confusion", None)
    return block


def protocol_block(pgd_scores: Any, autoattack_scores: Any = None) -> dict:
    """The card's ``cross_class`` block: the paper's PGD protocol at the top level, the scores of
    AutoAttack's own examples (when given) under ``autoattack``."""
    pgd = pgd_scores.to_dict() if hasattr(pgd_scores, "to_dict") else dict(pgd_scores)
    block = cross_class_block(pgd, pgd["attack"])
    if autoattack_scores is not None:
        aa = autoattack_scores.to_dict() if hasattr(autoattack_scores, "to_dict") else dict(autoattack_scores)
        block["autoattack"] = cross_class_block(aa, aa["attack"])
    return block


@dataclass(frozen=True)
class CardDescription:
    """What a card says about a model beyond the measurements, in RobustBench's terms:
    ``architecture``, the paper's ``link``, ``authors`` and ``venue`` (``"Venue Year"``),
    ``additional_data`` (trained with extra data), ``number_forward_passes`` per input (>= 1),
    the authors' ``reported`` robust accuracy (a percentage string such as ``"53.42"``; ``None``:
    keep the base card's) and a ``footnote`` (``None``: keep the base card's)."""

    architecture: str = ""
    link: str = ""
    authors: str = ""
    venue: str = ""
    additional_data: bool = False
    number_forward_passes: int = 1
    reported: str | None = None
    footnote: str | None = None

    def replace(self, **changes: Any) -> CardDescription:
        """A copy with ``changes`` applied (field names as above)."""
        return replace(self, **changes)


_DESCRIPTION_FIELDS = tuple(f.name for f in fields(CardDescription))


def card_from_results(
    *,
    name: str,
    dataset: str,
    threat_model: str,
    eps: float | str | None,
    clean_accuracy: float,
    robust_accuracy: float | None,
    description: CardDescription | None = None,
    unreliable: bool = False,
    cross_class: dict | None = None,
    evaluation: dict | None = None,
    training: dict | None = None,
    base: Mapping | None = None,
    **legacy: Any,
) -> dict:
    """Build (and validate) a card from measured accuracies (fractions in [0,1]).

    ``description`` (:class:`CardDescription`) holds the descriptive fields; the old flat
    keywords (``architecture``, ``link``, ``authors``, ``venue``, ``additional_data``,
    ``number_forward_passes``, ``reported``, ``footnote``) still work with a
    :class:`DeprecationWarning`; any other keyword raises :class:`TypeError`. Raises
    :class:`CardError` for an unknown threat model or a card that breaks the schema.

    ``robust_accuracy`` is AutoAttack's (``autoattack_acc``); ``None`` for a card of scores only (a
    training run, a sweep without AutoAttack), which then carries its ``cross_class`` block (and
    ``training``) but no evaluation (never a PGD number in ``autoattack_acc``).

    ``base`` (e.g. the official RobustBench card of the same model) pre-fills every descriptive
    key; measured keys (``clean_acc``, ``autoattack_acc``, ``eps``, ``dataset``) are ours, and
    ``reported`` keeps the authors' number from ``base`` unless given; ``unreliable`` sets
    RobustBench's flag. Keys are written in RobustBench's order, then our blocks.
    """
    unknown = [k for k in legacy if k not in _DESCRIPTION_FIELDS]
    if unknown:
        raise TypeError(f"card_from_results() got an unexpected keyword argument {unknown[0]!r}")
    description = description or CardDescription()
    if legacy:
        warnings.warn(f"card_from_results({', '.join(f'{k}=' for k in legacy)}) is deprecated: pass "
                      f"description=CardDescription(...)", DeprecationWarning, stacklevel=2)
        description = description.replace(**legacy)
    d = asdict(description)
    link, authors, venue, architecture = d["link"], d["authors"], d["venue"], d["architecture"]
    additional_data, number_forward_passes = d["additional_data"], d["number_forward_passes"]
    reported, footnote = d["reported"], d["footnote"]
    card: dict[str, Any] = {
        "link": link, "name": name, "authors": authors, "additional_data": bool(additional_data),
        "number_forward_passes": int(number_forward_passes), "dataset": dataset, "venue": venue,
        "architecture": architecture,
    }
    if base:
        for k in ROBUSTBENCH_KEYS:
            if k in base and k not in ("eps", "clean_acc", "autoattack_acc", "dataset",
                                       "corruptions_acc", "corruptions_mce", "corruptions_acc_3d",
                                       "corruptions_mce_3d", "external"):
                card[k] = base[k]
    card["dataset"] = dataset
    card["eps"] = format_eps(eps) if eps is not None else None
    card["clean_acc"] = format_percent(clean_accuracy)
    if reported is not None:
        card["reported"] = reported
    card.setdefault("reported", "")
    if robust_accuracy is not None:
        card["autoattack_acc"] = format_percent(robust_accuracy)
    if footnote is not None:
        card["footnote"] = footnote
    if unreliable:  # RobustBench's flag for an evaluation its checks warned about
        card["unreliable"] = True
    ordered = {k: card[k] for k in ROBUSTBENCH_KEYS if k in card}
    for key, block in (("cross_class", cross_class), ("evaluation", evaluation), ("training", training)):
        if block is not None:
            ordered[key] = jsonable(block)
    try:
        check_norm(threat_model)
    except RBCrossclassError as err:
        raise CardError(f"card {name!r}: {err}") from err
    validate_card(ordered, f"card {name!r}")
    return ordered


def official_card_path(folder: str | os.PathLike, dataset: str, threat_model: str, name: str) -> Path:
    """``<folder>/<dataset>/<threat_model>/<name>.json`` (RobustBench's model_info layout)."""
    return Path(folder) / dataset / threat_model / f"{name}.json"
