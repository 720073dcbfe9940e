"""Significance tiers: which entries of a board can be told apart at 95 %.

Two tests compare the robust accuracy of two entries measured on the same test points:

- **paired** (both entries carry per-point robust flags, ``evaluation.point_flags``, on the same
  first-N points): McNemar's exact test. Only the points where the two models disagree count:
  with ``b`` points robust for the first model only and ``c`` for the second only, under the null
  hypothesis each disagreement goes either way with probability 1/2, and the two-sided p-value is
  ``min(1, 2·P(X ≤ min(b, c)))`` with ``X ~ Binomial(b + c, 1/2)`` (1 when ``b + c = 0``);
- **aggregates only** (RobustBench's official cards give one accuracy; N = 10,000 on CIFAR-10): the
  two-sided pooled two-proportion z-test of ``k1/n1`` against ``k2/n2``. The entries were evaluated
  on the same points, so the unpaired test ignores a positive correlation between them and errs
  towards "cannot be told apart".

**Multiple comparisons**: every pair of entries within a comparability group is tested, and the
p-values are adjusted with Holm's step-down method over all those pairs (family-wise error 5 %).

**Tiers**: walking down the group in board order, an entry opens a new tier when it differs
significantly (adjusted p < 0.05) from the first entry of the current tier; otherwise it joins
that tier. So every entry of a tier is indistinguishable at 95 % from the tier's best entry.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["ALPHA", "Comparison", "assign_tiers", "holm", "mcnemar_exact_p", "two_proportion_p"]

ALPHA = 0.05


def mcnemar_exact_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts ``b`` and ``c`` (≥ 0)."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got {b}, {c}")
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    # P(X <= k) for X ~ Binomial(n, 1/2), summed in log space (n can be thousands)
    log_half_n = -n * math.log(2.0)
    tail = sum(math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + log_half_n)
               for i in range(k + 1))
    return min(1.0, 2.0 * tail)


def two_proportion_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (``k`` successes of ``n``)."""
    if n1 <= 0 or n2 <= 0:
        raise ValueError(f"sample sizes must be positive, got {n1}, {n2}")
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = abs(k1 / n1 - k2 / n2) / se
    return math.erfc(z / math.sqrt(2.0))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given), each capped at 1."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class Comparison:
    """One tested pair (indices into the group, in board order), its test and p-values."""

    first: int
    second: int
    test: str  # "mcnemar_exact" or "two_proportion_z"
    p_value: float
    adjusted_p: float


def assign_tiers(n: int, test: Callable[[int, int], tuple[str, float]],
                 alpha: float = ALPHA) -> tuple[list[int], list[Comparison]]:
    """Tiers (1, 2, ...) of ``n`` entries given in board order (best first).

    ``test(i, j)`` returns ``(test name, two-sided p-value)`` for entries ``i < j``. Every pair is
    tested, Holm-adjusted, and tiers are cut as the module docstring says. Returns the tier of
    each entry and every comparison.
    """
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    raw = [test(i, j) for i, j in pairs]
    adjusted = holm([p for _, p in raw])
    comparisons = [Comparison(i, j, name, p, a)
                   for (i, j), (name, p), a in zip(pairs, raw, adjusted, strict=True)]
    lookup = {(c.first, c.second): c.adjusted_p for c in comparisons}
    tiers: list[int] = []
    leader, tier = 0, 1
    for i in range(n):
        if i > 0 and lookup[(leader, i)] < alpha:
            leader, tier = i, tier + 1
        tiers.append(tier)
    return tiers, comparisons
