"""Does the attribution matrix mean what the paper says? Compare it with where the attack pushes.

Wei, Guo & Wang read a high ``C[i,j]`` as classes ``i`` and ``j`` sharing features. If shared
features are what an attacker exploits, the pairs with high ``C[i,j]`` should also be the pairs the
adversarial examples are pushed between. This module measures that on the same examples:

- the **adversarial confusion matrix** ``M[i,j]``: how many points of true class ``i`` the attack's
  final iterate classifies as ``j`` (``[K,K]`` counts, rows sum to the class counts);
- its symmetric rate over an unordered pair ``r(i,j) = (M[i,j]/n_i + M[j,i]/n_j) / 2`` (``n_i``
  points of class ``i``), since ``C`` is symmetric;
- Spearman's rank correlation of ``C[i,j]`` with ``r(i,j)`` over the ``K'(K'−1)/2`` unordered pairs
  of classes that have samples, with its two-sided p-value (scipy's ``spearmanr``).

This check is ours, not the paper's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["confusion_update", "attribution_confusion_correlation"]


def confusion_update(confusion: torch.Tensor, labels: torch.Tensor, predictions: torch.Tensor) -> None:
    """Add one batch to ``confusion [K,K]`` (int64) in place: ``labels``, ``predictions``: ``[B]``."""
    k = confusion.shape[0]
    flat = labels.to(torch.int64) * k + predictions.to(torch.int64)
    confusion += torch.bincount(flat, minlength=k * k).view(k, k).to(confusion.device)


def attribution_confusion_correlation(matrix: Sequence[Sequence[float | None]],
                                      confusion: Sequence[Sequence[int]]) -> dict:
    """Spearman's ρ of the attribution matrix ``C`` (``K×K``, ``None``/NaN for empty classes) with
    the symmetric adversarial confusion rate, over unordered pairs of classes with samples.

    Returns ``{"spearman_rho", "p_value", "n_pairs", "pairs"}``; ``spearman_rho`` and ``p_value``
    are ``None`` when fewer than 3 pairs exist or either series is constant (ρ undefined).
    ``pairs`` says what was correlated.
    """
    from scipy.stats import spearmanr

    c = torch.tensor([[math.nan if v is None else float(v) for v in row] for row in matrix],
                     dtype=torch.float64)
    m = torch.tensor(confusion, dtype=torch.float64)
    if c.shape != m.shape or c.dim() != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"matrix {tuple(c.shape)} and confusion {tuple(m.shape)} must be the same K×K")
    counts = m.sum(1)
    i, j = torch.triu_indices(c.shape[0], c.shape[0], offset=1)
    keep = (counts[i] > 0) & (counts[j] > 0) & ~torch.isnan(c[i, j])
    i, j = i[keep], j[keep]
    xs = c[i, j].tolist()
    ys = ((m[i, j] / counts[i] + m[j, i] / counts[j]) / 2).tolist()
    out = {"spearman_rho": None, "p_value": None, "n_pairs": len(xs),
           "pairs": "unordered class pairs: C[i,j] vs (M[i,j]/n_i + M[j,i]/n_j)/2"}
    if len(xs) >= 3 and len(set(xs)) > 1 and len(set(ys)) > 1:
        res = spearmanr(xs, ys)
        out["spearman_rho"], out["p_value"] = float(res.statistic), float(res.pvalue)
    return out
