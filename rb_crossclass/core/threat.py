"""Threat models and ε: the one place their rules live.

- **Norms** we attack in (:data:`NORMS`): ``Linf`` and ``L2``. PGD, AutoAttack, the training
  recipes, the scorer and the cards all accept exactly these (pyautoattack's L1 is not offered:
  the paper's cross-class protocol has no ℓ1 PGD).
- **Threat models** of RobustBench's boards (:data:`THREAT_MODELS`): the norms plus
  ``corruptions`` (common corruptions: no ε, accuracy in ``corruptions_acc``).
- **ε** is written ``8/255`` or ``0.0314`` (:func:`parse_eps`, finite and ≥ 0) and stored on cards
  in RobustBench's string form (:func:`format_eps`: ``8/255`` when ε is a multiple of 1/255 below
  1, else the shortest decimal); :data:`EPS_PATTERN` is the form a card's ``eps`` string must have
  (the card schema repeats it; a test keeps the two equal).
- **Range** (:func:`check_eps`): images live in [0,1], so an ℓ∞ ε of 1 or more reaches every
  image: such a value is the "8 instead of 8/255" slip and is refused (ℓ2 radii may exceed 1).
- **Defaults** (:func:`default_eps`): RobustBench's 8/255 for ℓ∞ and 0.5 for ℓ2.
- **PGD step rule** of the cross-class protocol (Wei, Guo & Wang, ICML 2025) (:func:`pgd_step_size`):
  ε/4 for ℓ∞ and ε/8 for ℓ2, for :data:`PAPER_PGD_STEPS` (20) iterations.
- **Accuracy fields** of a card per threat model, as in ``robustbench.utils.ACC_FIELDS``:
  :func:`accuracy_field` is the measured key (``autoattack_acc``, ``corruptions_acc``,
  ``corruptions_acc_3d``); :func:`ranking_fields` the keys a board ranks by, first present wins
  (``external`` before ``autoattack_acc`` on norm boards).
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from .errors import RBCrossclassError

NORMS: tuple[str, ...] = ("Linf", "L2")
CORRUPTIONS: tuple[str, ...] = ("corruptions", "corruptions_3d")
THREAT_MODELS: tuple[str, ...] = NORMS + CORRUPTIONS
EPS_PATTERN = r"^([0-9]+/[1-9][0-9]*|[0-9]+(\.[0-9]+)?)$"
_DEFAULT_EPS = {"Linf": 8 / 255, "L2": 0.5}
_STEP_DIVISOR = {"Linf": 4.0, "L2": 8.0}
# The cross-class protocol's number of PGD iterations (Wei, Guo & Wang, ICML 2025: untargeted
# PGD-20 on CE with the true label, random start). Every default of 20 steps in the package is this one.
PAPER_PGD_STEPS: int = 20


class ThreatModelError(RBCrossclassError, ValueError):
    """An unknown norm / threat model or a malformed ε; the message names the accepted values."""


def check_norm(norm: str) -> str:
    """``norm`` when it is one of :data:`NORMS`, else :class:`ThreatModelError`."""
    if norm not in NORMS:
        raise ThreatModelError(f"threat model must be one of {', '.join(NORMS)}, got {_short(norm)}")
    return norm


def check_threat_model(threat_model: str) -> str:
    """``threat_model`` when it is one of :data:`THREAT_MODELS` (a RobustBench board), else an error."""
    if threat_model not in THREAT_MODELS:
        raise ThreatModelError(
            f"threat model must be one of {', '.join(THREAT_MODELS)}, got {_short(threat_model)}"
        )
    return threat_model


# ASCII digits only (Python's float() also takes '８' and '1_0'), a short exponent (Fraction would
# build 10**99999999 exactly), and an optional '/denominator'.
_DECIMAL = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?"
EPS_TEXT = re.compile(rf"{_DECIMAL}(?:/{_DECIMAL})?")


def parse_eps(value: str | float) -> float:
    """``'8/255'``, ``'0.0314'`` or a number → float ε, finite and ≥ 0.

    Text must be ASCII digits with an optional decimal point, exponent and ``/denominator`` (no
    ``_``, no other scripts' digits). Raises :class:`ThreatModelError` (a ``ValueError``) for
    anything else, including ``inf``, ``nan``, ``1e999`` (infinity as a float), ``1e-400`` (a
    non-zero value that underflows to 0) and division by zero.
    """
    if isinstance(value, bool):
        raise ThreatModelError(f"epsilon must look like 8/255 or 0.0314, got {value!r}")
    if isinstance(value, (int, float)):
        eps = float(value)
    else:
        text = str(value).strip()
        if not EPS_TEXT.fullmatch(text):
            raise ThreatModelError(f"epsilon must look like 8/255 or 0.0314 (ASCII digits, no '_'), "
                                   f"got {_short(value)}")
        num, _, den = text.partition("/")
        try:
            exact = Fraction(num) / Fraction(den or "1")
            eps = float(exact)
        except (ValueError, ZeroDivisionError, OverflowError) as err:
            raise ThreatModelError(f"epsilon must be a finite number such as 8/255 or 0.0314, "
                                   f"got {_short(value)}") from err
        if eps == 0 and exact != 0:
            raise ThreatModelError(f"epsilon {_short(value)} is too small to represent: it would be 0")
    if not math.isfinite(eps) or eps < 0:
        raise ThreatModelError(f"epsilon must be a finite number >= 0, got {_short(value)}")
    return eps


def check_attack_eps(eps: float) -> float:
    """``eps`` when it is a radius an attack can use: > 0 (an attack of radius 0 returns its inputs).
    Raises :class:`ThreatModelError`."""
    if not eps > 0:
        raise ThreatModelError(f"epsilon must be > 0 for an attack, got {eps:g} (a radius of 0 leaves "
                               "every input unchanged)")
    return eps


def check_eps(eps: float, norm: str) -> float:
    """``eps`` when it is a meaningful radius for ``norm`` on [0,1] images: for ``Linf`` it must
    be below 1 (ε ≥ 1 allows any image; ``8`` is almost always a slip for ``8/255``).
    Raises :class:`ThreatModelError`."""
    if norm == "Linf" and eps >= 1:
        hint = f"; did you mean {format_eps(eps / 255)}?" if eps == int(eps) and 1 <= eps < 255 else ""
        raise ThreatModelError(f"Linf epsilon {eps:g} is not below 1: images are in [0,1], so it allows "
                               f"any image{hint}")
    return eps


def format_eps(eps: float | str) -> str:
    """ε in RobustBench's string form: ``'8/255'`` when ε·255 is a whole number and ε < 1, else the
    shortest decimal (``'0.5'``). A string is checked against :data:`EPS_PATTERN` and kept as it is."""
    if isinstance(eps, str):
        if not re.match(EPS_PATTERN, eps):
            raise ThreatModelError(f"epsilon string must look like 8/255 or 0.5, got {_short(eps)}")
        return eps
    eps = parse_eps(eps)
    k = eps * 255
    if abs(k - round(k)) < 1e-6 and round(k) > 0 and eps < 1:
        return f"{round(k)}/255"
    text = f"{eps:g}"
    if not re.match(EPS_PATTERN, text):  # 1e-07 and friends: write the decimal out
        text = f"{eps:.12f}".rstrip("0").rstrip(".")
    return text


SAME_RADIUS_TOLERANCE = 0.02  # relative: RobustBench writes 8/255 (0.03137) as "0.031" on six cards


def same_radius(a: float | str, b: float | str) -> bool:
    """Whether two radii are the same threat model's ε: equal within
    :data:`SAME_RADIUS_TOLERANCE` relative (``0.031`` and ``8/255`` are; ``2/255`` and ``8/255``
    are not)."""
    x, y = parse_eps(a), parse_eps(b)
    return abs(x - y) <= SAME_RADIUS_TOLERANCE * max(x, y)


def default_eps(norm: str) -> float:
    """RobustBench's ε for a norm: 8/255 (ℓ∞) or 0.5 (ℓ2)."""
    return _DEFAULT_EPS[check_norm(norm)]


def pgd_step_size(eps: float, norm: str) -> float:
    """The cross-class protocol's PGD step: ε/4 for ℓ∞, ε/8 for ℓ2."""
    return eps / _STEP_DIVISOR[check_norm(norm)]


_ACCURACY_FIELD = {"Linf": "autoattack_acc", "L2": "autoattack_acc", "corruptions": "corruptions_acc",
                   "corruptions_3d": "corruptions_acc_3d"}


def accuracy_field(threat_model: str) -> str:
    """The card key holding a board's measured robust accuracy (``autoattack_acc`` for ℓ∞/ℓ2,
    ``corruptions_acc`` / ``corruptions_acc_3d`` for corruption boards)."""
    return _ACCURACY_FIELD[check_threat_model(threat_model)]


def ranking_fields(threat_model: str) -> tuple[str, ...]:
    """The card keys a board ranks by, in priority order (RobustBench: ``external`` first on norm
    boards, then the measured field)."""
    field = accuracy_field(threat_model)
    return ("external", field) if threat_model in NORMS else (field,)


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "...'"
