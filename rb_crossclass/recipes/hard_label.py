"""Hard-label recipes: ``standard`` (natural training), ``pgd_at`` (Madry et al., 2018) and
``trades`` (Zhang et al., 2019). All three use cross-entropy as their criterion; they differ in the
inner attack they are composed with (:mod:`.inner`)."""

from __future__ import annotations

from .base import Recipe
from .inner import NoAttack
from .registry import register_recipe


@register_recipe("standard")
class Standard(Recipe):
    """``CE(f(x), y)``: natural training, the baseline."""

    default_inner = "none"

    def __init__(self, inner: NoAttack | None = None) -> None:
        super().__init__(inner or NoAttack())


@register_recipe("pgd_at")
class PGDAT(Recipe):
    """``CE(f(x'), y)`` with ``x'`` = PGD on CE in the ε-ball (default ℓ∞ 8/255, step 2/255,
    10 steps, random start, BatchNorm in train mode during the attack as in the classic code)."""

    default_inner = "pgd_at"


@register_recipe("trades")
class TRADES(Recipe):
    """``CE(f(x), y) + β·KL(f(x)‖f(x'))`` (β = 6), ``x'`` maximizing the KL; the attack runs in
    eval mode by default, as in the TRADES reference code. The KL is the reference's
    ``KLDivLoss(log_softmax(f(x')), softmax(f(x)))``, gradients flowing through both terms. The
    attack starts uniformly in the ε-ball (the reference starts at ``x + 0.001·N(0,1)``)."""

    default_inner = "trades"
