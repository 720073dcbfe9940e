"""95 % intervals for what a card reports: accuracies (binomial) and CAS (bootstrap over test points).

- :func:`accuracy_interval`: the Wilson score interval of ``k`` correct out of ``n`` (scipy's
  ``binomtest(...).proportion_ci(method="wilson")``), as fractions in [0,1].
- :func:`bootstrap_cas`: a stratified basic bootstrap of CAS (Wei, Guo & Wang, ICML 2025): the
  test points of each class are resampled with replacement (class sizes kept, as the test set
  fixes them), the class attribution vectors ``A_i`` and the matrix ``C`` are recomputed, and the
  2.5 / 97.5 percentiles of CAS over ``resamples`` draws are reflected about the estimate. It
  needs each point's features ``g(x) [N,D]``, which the scorer keeps only when asked
  (``intervals=True``).
- :func:`interval_withheld`: the rule under which no CAS interval is reported: a class with fewer
  than :data:`MIN_POINTS_PER_CLASS` points (one point per class gives a zero-width "interval";
  5 per class covered the all-images CAS in 0 of 40 draws for K = 100). Everything that prints
  or renders a CAS interval goes through :func:`shown_cas_interval`, which says
  :data:`WITHHELD` instead.
"""

from __future__ import annotations

import math

import torch

from .metric import attribution_matrix, cas

CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 200
MIN_POINTS_PER_CLASS = 20
"""A CAS interval is withheld when some class has fewer test points than this (classes without
points are left out, as in CAS). Chosen by measuring coverage of the exact CAS
(``benchmarks/bench_cas_interval_coverage.py``, results in ``benchmarks/results/``): with 1 point
per class the bootstrap has no spread (coverage 0); at 20 per class and above the coverage is
85-89 % for K = 10, 100 and 1000 (90-95 % at 50), against 0-81 % at 3-5 per class."""
WITHHELD = f"withheld (fewer than {MIN_POINTS_PER_CLASS} points in some class)"


def accuracy_interval(correct: int, total: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval ``(low, high)`` in [0,1] for ``correct`` of ``total`` (NaN when
    ``total`` is 0)."""
    if total <= 0:
        return (math.nan, math.nan)
    from scipy.stats import binomtest

    ci = binomtest(int(correct), int(total)).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def bootstrap_cas(features: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, *,
                  resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                  confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Basic-bootstrap interval ``(low, high)`` of CAS under a stratified bootstrap of the test points
    (computed whatever the class sizes; callers check :func:`interval_withheld` first).

    ``features [N,D]`` (any float dtype; one row per point, e.g. of its adversarial example),
    ``labels [N]`` in [0,K), ``weight [K,D]`` the head's W. Deterministic for a given ``seed``.
    Classes without points stay empty in every draw (left out of CAS as in the point estimate).
    """
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    g = torch.Generator().manual_seed(int(seed))
    labels = labels.detach().to("cpu", torch.int64)
    order = torch.argsort(labels, stable=True)
    feats = features.detach().to("cpu", torch.float64)[order]
    labels = labels[order]
    w = weight.detach().to("cpu", torch.float64)
    k = w.shape[0]
    counts = torch.bincount(labels, minlength=k)
    starts = torch.cumsum(counts, 0) - counts
    size, first = counts[labels], starts[labels]  # each point's class size and where it starts
    values = []
    for _ in range(resamples):
        # each point is replaced by a uniform draw from its own class (class sizes kept)
        pick = first + (torch.rand(len(labels), generator=g, dtype=torch.float64) * size).long()
        sums = torch.zeros(k, feats.shape[1], dtype=torch.float64).index_add_(0, labels, feats[pick])
        vectors = sums / counts.clamp_min(1).unsqueeze(1) * w
        values.append(cas(attribution_matrix(vectors)))
    point = cas(attribution_matrix(torch.zeros(k, feats.shape[1], dtype=torch.float64).index_add_(
        0, labels, feats) / counts.clamp_min(1).unsqueeze(1) * w))
    tail = (1 - confidence) / 2
    ordered = torch.tensor(values, dtype=torch.float64)
    low, high = float(torch.quantile(ordered, tail)), float(torch.quantile(ordered, 1 - tail))
    # basic (reverse-percentile) interval: CAS of noisy class means is biased low, and a resample
    # is as far below the estimate as the estimate is below the truth; percentiles would double it
    return (2 * point - high, 2 * point - low)


def interval_withheld(counts) -> str | None:
    """Why a CAS interval from classes of ``counts`` points (zeros: classes without points, left
    out) cannot be trusted, or ``None`` when it can. The rule: every class with points has at least
    :data:`MIN_POINTS_PER_CLASS` of them."""
    present = [int(c) for c in counts if int(c) > 0]
    if not present or min(present) < MIN_POINTS_PER_CLASS:
        return WITHHELD
    return None


def shown_cas_interval(block: dict, key: str = "cas") -> tuple[float, float] | str | None:
    """What to show for the CAS interval ``key`` (``cas`` / ``clean_cas``) of a card's
    ``cross_class`` block (or a score result's dict): the interval, the :data:`WITHHELD` text when
    the rule withholds it (also for cards written before the rule, read from their
    ``per_class_counts``), or ``None`` when there is none."""
    intervals = block.get("intervals") or {}
    counts = block.get("per_class_counts")
    if intervals.get("cas_withheld") or (counts and intervals.get(key) and interval_withheld(counts)):
        return WITHHELD
    value = intervals.get(key)
    if not value or any(v is None for v in value):
        return None
    return (float(value[0]), float(value[1]))
