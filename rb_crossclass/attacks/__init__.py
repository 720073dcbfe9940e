"""Attacks: projected gradient descent for ℓ∞ and ℓ2 (:mod:`.pgd`), with input-only gradients."""

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

__all__ = [
    "AttackConfigError",
    "AttackResult",
    "LossFn",
    "PGDConfig",
    "TorchattacksError",
    "check_attack_spec",
    "ce_loss",
    "is_torchattacks_spec",
    "parse_spec",
    "pgd",
    "skip_random_starts",
]

if TYPE_CHECKING:
    from .pgd import AttackConfigError, AttackResult, LossFn, PGDConfig, ce_loss, pgd, skip_random_starts
    from .torchattacks_adapter import TorchattacksError, check_attack_spec, is_torchattacks_spec, parse_spec


lazy_exports(__name__)
