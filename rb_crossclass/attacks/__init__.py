"""Attacks: projected gradient descent for ℓ∞ and ℓ2 (:mod:`.pgd`), with input-only gradients."""

from ..core.lazy import lazy_exports

__all__ = [
    "AttackConfigError",
    "AttackResult",
    "LossFn",
    "PGDConfig",
    "ce_loss",
    "pgd",
    "skip_random_starts",
]

lazy_exports(__name__, {
    "AttackConfigError": ".pgd",
    "AttackResult": ".pgd",
    "LossFn": ".pgd",
    "PGDConfig": ".pgd",
    "ce_loss": ".pgd",
    "pgd": ".pgd",
    "skip_random_starts": ".pgd",
})
