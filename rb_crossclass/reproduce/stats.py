"""The small statistics of a multi-seed reproduction: a mean with its t-interval across seeds, the
one-sided paired t-test and sign test of a claim, and the decision rule that turns them into a
verdict.

The decision rule (:func:`decide`), for paired differences ``d`` oriented so that the paper's
claim means ``d > 0``, at level ``ALPHA`` = 0.05:

1. **inconclusive** when fewer than ``MIN_SEEDS_FOR_VERDICT`` (2) seeds or fewer than 2 differences
   are available: one training run cannot tell the effect from training noise;
2. **reproduced** when the one-sided t-test in the paper's direction (H1: mean d > 0) gives
   p < ALPHA;
3. **not reproduced** when the one-sided t-test in the opposite direction (H1: mean d < 0) gives
   p < ALPHA, or when the mean of ``d`` is ≤ 0 with at least ``MIN_SEEDS_FOR_SIGN`` (3) seeds (the
   point estimate contradicts the paper with enough seeds to trust its sign);
4. **inconclusive** otherwise (e.g. a positive mean that is not significant, or a non-positive mean
   from only 2 seeds).

The sign test (exact binomial, zeros dropped) is reported beside the t-test as a check that does
not assume normal differences; it does not enter the verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

ALPHA = 0.05
MIN_SEEDS_FOR_VERDICT = 2
MIN_SEEDS_FOR_SIGN = 3
MIN_SEEDS_FOR_INTERVAL = 3  # a t-interval from 2 seeds (t = 12.7) says nothing the two values do not

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"


@dataclass(frozen=True)
class Summary:
    """Mean, spread and (with at least 3 seeds) the 95 % t-interval of one quantity across seeds."""

    n: int
    mean: float | None
    sd: float | None
    min: float | None
    max: float | None
    ci95: tuple[float, float] | None
    note: str = ""

    def to_dict(self) -> dict:
        out = asdict(self)
        out["ci95"] = list(self.ci95) if self.ci95 is not None else None
        return out


def summarize(values: Sequence[float], n_seeds: int | None = None) -> Summary:
    """``values`` (one per seed, or per seed and run): mean, sample sd, range and the two-sided 95 %
    t-interval of the mean when ``n_seeds`` (default ``len(values)``) is at least 3; with fewer the
    interval is ``None`` and ``note`` says why."""
    from scipy.stats import t

    vals = [float(v) for v in values if v is not None and math.isfinite(v)]
    n = len(vals)
    seeds = n if n_seeds is None else n_seeds
    if n == 0:
        return Summary(0, None, None, None, None, None, "no value")
    mean = sum(vals) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else None
    if seeds < MIN_SEEDS_FOR_INTERVAL or n < 2:
        note = f"{seeds} seed{'s' if seeds != 1 else ''}: no interval (needs ≥ {MIN_SEEDS_FOR_INTERVAL})"
        return Summary(n, mean, sd, min(vals), max(vals), None, note)
    half = float(t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return Summary(n, mean, sd, min(vals), max(vals), (mean - half, mean + half))


def t_test_one_sided(diffs: Sequence[float]) -> tuple[float | None, float | None]:
    """One-sample t-test of ``diffs``: ``(p for H1 mean > 0, p for H1 mean < 0)``; ``None`` with
    fewer than 2 values. Identical differences (sd 0) give p 0 in their direction and 1 in the other
    (both 1 when all are 0)."""
    from scipy.stats import t

    d = [float(v) for v in diffs]
    n = len(d)
    if n < 2:
        return None, None
    mean = sum(d) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / (n - 1))
    if sd == 0:
        return (0.0 if mean > 0 else 1.0), (0.0 if mean < 0 else 1.0)
    stat = mean / (sd / math.sqrt(n))
    return float(t.sf(stat, n - 1)), float(t.cdf(stat, n - 1))


def sign_test(diffs: Sequence[float]) -> float | None:
    """Exact one-sided sign test (H1: more positive than negative differences; zeros dropped)."""
    from scipy.stats import binomtest

    pos = sum(1 for v in diffs if v > 0)
    nonzero = sum(1 for v in diffs if v != 0)
    if nonzero == 0:
        return None
    return float(binomtest(pos, nonzero, 0.5, alternative="greater").pvalue)


@dataclass(frozen=True)
class Decision:
    """A claim test's outcome: the verdict, the p-values it rests on and the rule that fired."""

    verdict: str
    p_paper: float | None  # one-sided t-test, H1: the paper's direction
    p_opposite: float | None  # one-sided t-test, H1: the opposite direction
    p_sign: float | None  # one-sided sign test in the paper's direction (reported, not decisive)
    reason: str


def decide(diffs: Sequence[float], n_seeds: int, alpha: float = ALPHA) -> Decision:
    """The verdict of paired differences ``diffs`` (paper's direction: > 0) from ``n_seeds`` seeds,
    by the rule in the module docstring."""
    d = [float(v) for v in diffs]
    p_up, p_down = t_test_one_sided(d)
    p_sign = sign_test(d)
    if n_seeds < MIN_SEEDS_FOR_VERDICT or len(d) < 2:
        return Decision(INCONCLUSIVE, p_up, p_down, p_sign,
                        f"{n_seeds} seed{'s' if n_seeds != 1 else ''}: training noise cannot be told from "
                        f"the effect (a verdict needs ≥ {MIN_SEEDS_FOR_VERDICT} seeds)")
    mean = sum(d) / len(d)
    if p_up is not None and p_up < alpha:
        return Decision(REPRODUCED, p_up, p_down, p_sign, f"one-sided t-test p = {p_up:.3g} < {alpha:g} "
                        "in the paper's direction")
    if p_down is not None and p_down < alpha:
        return Decision(NOT_REPRODUCED, p_up, p_down, p_sign, f"one-sided t-test p = {p_down:.3g} < "
                        f"{alpha:g} in the opposite direction")
    if mean <= 0 and n_seeds >= MIN_SEEDS_FOR_SIGN:
        return Decision(NOT_REPRODUCED, p_up, p_down, p_sign, f"mean {mean:+.3g} is not in the paper's "
                        f"direction with {n_seeds} seeds")
    return Decision(INCONCLUSIVE, p_up, p_down, p_sign, f"p = {p_up:.3g} ≥ {alpha:g} in the paper's "
                    f"direction and not significant against it (mean {mean:+.3g}, {n_seeds} seeds)")
