"""How robustness is spread over classes: per-class clean and robust accuracy, the worst class and
the spread (best minus worst), from per-class counts of correct points.

A class without test points has no accuracy (``None``) and is left out of the worst class and the
spread. The block goes on cards (``evaluation.per_class`` for AutoAttack, ``cross_class.per_class``
for the attack the cross-class scores used).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .uncertainty import accuracy_interval


def per_class_block(counts: Sequence[int], clean_correct: Sequence[int], robust_correct: Sequence[int],
                    class_names: Sequence[str]) -> dict:
    """``{"class_names", "counts", "clean_accuracy", "robust_accuracy", "robust_interval",
    "worst_class", "worst_class_robust_accuracy", "best_class_robust_accuracy", "spread"}``;
    accuracies are fractions in [0,1] (``None`` for an empty class), the interval is Wilson 95 %."""
    k = len(class_names)
    if not (len(counts) == len(clean_correct) == len(robust_correct) == k):
        raise ValueError(f"per-class counts for {len(counts)} classes but {k} class names")
    clean = [c / n if n else None for c, n in zip(clean_correct, counts, strict=True)]
    robust = [c / n if n else None for c, n in zip(robust_correct, counts, strict=True)]
    present = [i for i in range(k) if counts[i]]
    worst = min(present, key=lambda i: (robust[i], i)) if present else None
    best = max((robust[i] for i in present), default=None)
    return {
        "class_names": list(class_names),
        "counts": [int(n) for n in counts],
        "clean_accuracy": clean,
        "robust_accuracy": robust,
        "robust_interval": [list(accuracy_interval(c, n)) if n else None
                            for c, n in zip(robust_correct, counts, strict=True)],
        "worst_class": class_names[worst] if worst is not None else None,
        "worst_class_robust_accuracy": robust[worst] if worst is not None else None,
        "best_class_robust_accuracy": best,
        "spread": best - robust[worst] if worst is not None else None,
    }


def worst_class_words(block: dict) -> str:
    """How a summary names the worst class of a :func:`per_class_block` block: ``"'cat'"``, or
    ``"every class (all tie)"`` when the spread is 0 (the block still names the first class, but no
    class is worse than another)."""
    return "every class (all tie)" if block["spread"] == 0 else repr(block["worst_class"])


def per_class_from_flags(labels: torch.Tensor, clean_flags: torch.Tensor, robust_flags: torch.Tensor,
                         class_names: Sequence[str]) -> dict:
    """:func:`per_class_block` from per-point results: ``labels [N]`` in [0,K), ``clean_flags`` and
    ``robust_flags`` ``[N]`` bool (correct on clean inputs / under attack)."""
    k = len(class_names)
    labels = labels.to(torch.int64).cpu()

    def count(mask: torch.Tensor | None) -> list[int]:
        chosen = labels if mask is None else labels[mask.cpu().bool()]
        return torch.bincount(chosen, minlength=k).tolist()

    return per_class_block(count(None), count(clean_flags), count(robust_flags), class_names)
