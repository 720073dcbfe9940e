"""RobustBench's AutoAttack protocol as settings: version, attacks, ε, norm, batch size, seed."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..core.errors import RBCrossclassError
from ..core.threat import ThreatModelError, check_eps, check_norm

AA_ATTACKS = ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t")
VERSIONS = ("standard", "plus", "rand", "custom")
DEFAULT_BATCH_SIZE = 250  # pyautoattack's default batch size


class EvaluateError(RBCrossclassError, ValueError):
    """Bad evaluation settings or an incompatible resume state; the message says the fix."""


@dataclass(frozen=True)
class AutoAttackConfig:
    """AutoAttack settings (RobustBench protocol: ``version='standard'``, ``seed=0``).

    ``attacks`` is only for ``version='custom'`` (a subset/order of :data:`AA_ATTACKS`).
    ``batch_size`` matters for exact reproduction: pyautoattack seeds every batch, so the same
    batch size gives the same per-point results.
    """

    norm: str = "Linf"
    eps: float = 8 / 255
    version: str = "standard"
    attacks: tuple[str, ...] | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    seed: int = 0

    def __post_init__(self) -> None:
        try:
            check_norm(self.norm)
        except RBCrossclassError as err:
            raise EvaluateError(str(err)) from err
        if self.version not in VERSIONS:
            raise EvaluateError(f"AutoAttack version must be one of {VERSIONS}, got {self.version!r}")
        if self.version == "custom":
            if not self.attacks:
                raise EvaluateError("--aa-version custom needs --attacks (e.g. apgd-ce apgd-t)")
            unknown = [a for a in self.attacks if a not in AA_ATTACKS]
            if unknown:
                raise EvaluateError(f"unknown attacks {unknown}; choose from {list(AA_ATTACKS)}")
            if len(set(self.attacks)) != len(self.attacks):
                raise EvaluateError(f"attacks listed twice in {list(self.attacks)}")
        elif self.attacks:
            raise EvaluateError(f"--attacks needs --aa-version custom (version {self.version!r} fixes them)")
        if not (isinstance(self.eps, (int, float)) and math.isfinite(self.eps) and self.eps > 0):
            raise EvaluateError(f"eps must be a finite number > 0, got {self.eps!r}")
        try:
            check_eps(float(self.eps), self.norm)
        except ThreatModelError as err:
            raise EvaluateError(str(err)) from err
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise EvaluateError(f"batch size must be an integer >= 1, got {self.batch_size!r}")

    def as_dict(self) -> dict:
        d = asdict(self)
        d["attacks"] = list(self.attacks) if self.attacks else None
        return d


