"""95 % intervals for what a card reports: accuracies (binomial) and CAS (bootstrap over test points).

- :func:`accuracy_interval`: the Wilson score interval of ``k`` correct out of ``n`` (scipy's
  ``binomtest(...).proportion_ci(method="wilson")``), as fractions in [0,1].
- :func:`bootstrap_cas`: a stratified percentile bootstrap of CAS (Wei, Guo & Wang, ICML 2025):
  the test points of each class are resampled with replacement (class sizes kept, as the test set
  fixes them), the class attribution vectors ``A_i`` and the matrix ``C`` are recomputed, and the
  2.5 / 97.5 percentiles of CAS over ``resamples`` draws are returned. It needs each point's
  features ``g(x) [N,D]``, which the scorer keeps only when asked (``intervals=True``).
"""

from __future__ import annotations

import math

import torch

from .metric import attribution_matrix, cas

CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 200


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
    """Percentile interval ``(low, high)`` of CAS under a stratified bootstrap of the test points.

    ``features [N,D]`` (any float dtype; one row per point, e.g. of its adversarial example),
    ``labels [N]`` in [0,K), ``weight [K,D]`` the head's W. Deterministic for a given ``seed``.
    Classes without points stay empty in every draw (left out of CAS as in the point estimate).
    """
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    g = torch.Generator().manual_seed(int(seed))
    feats = features.detach().to("cpu", torch.float64)
    labels = labels.detach().to("cpu", torch.int64)
    w = weight.detach().to("cpu", torch.float64)
    k = w.shape[0]
    members = [torch.nonzero(labels == i).flatten() for i in range(k)]
    values = []
    for _ in range(resamples):
        vectors = torch.zeros(k, feats.shape[1], dtype=torch.float64)
        for i, idx in enumerate(members):
            if len(idx):
                pick = idx[torch.randint(len(idx), (len(idx),), generator=g)]
                vectors[i] = feats[pick].mean(0) * w[i]
        values.append(cas(attribution_matrix(vectors)))
    tail = (1 - confidence) / 2
    ordered = torch.tensor(values, dtype=torch.float64)
    return (float(torch.quantile(ordered, tail)), float(torch.quantile(ordered, 1 - tail)))
