"""Attacks: projected gradient descent for ℓ∞ and ℓ2 (:mod:`.pgd`), with input-only gradients."""

from .pgd import AttackConfigError, AttackResult, LossFn, PGDConfig, ce_loss, pgd, skip_random_starts

__all__ = ["AttackConfigError", "AttackResult", "LossFn", "PGDConfig", "ce_loss", "pgd", "skip_random_starts"]
