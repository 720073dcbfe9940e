"""Per-class robustness and 95 % intervals, checked by hand on tiny cases."""

from __future__ import annotations

import math

import pytest
import torch

from rb_crossclass.crossclass import accuracy_interval, bootstrap_cas, per_class_block, per_class_from_flags


def test_per_class_from_known_flags():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    clean = torch.tensor([1, 1, 1, 0, 1, 1, 1, 1, 1, 1], dtype=torch.bool)
    robust = torch.tensor([1, 0, 0, 0, 1, 1, 1, 1, 0, 0], dtype=torch.bool)
    block = per_class_from_flags(labels, clean, robust, ["cat", "dog", "eel", "fox"])
    assert block["counts"] == [4, 2, 4, 0]
    assert block["clean_accuracy"] == [0.75, 1.0, 1.0, None]
    assert block["robust_accuracy"] == [0.25, 1.0, 0.5, None]  # fox has no test point
    assert block["worst_class"] == "cat" and block["worst_class_robust_accuracy"] == 0.25
    assert block["best_class_robust_accuracy"] == 1.0 and block["spread"] == 0.75
    assert block["robust_interval"][3] is None
    lo, hi = block["robust_interval"][0]
    assert lo < 0.25 < hi


def test_worst_class_ties_take_the_lowest_index_and_counts_must_match():
    block = per_class_block([2, 2], [2, 2], [1, 1], ["a", "b"])
    assert block["worst_class"] == "a" and block["spread"] == 0.0
    with pytest.raises(ValueError, match="3 class names"):
        per_class_block([1, 1], [1, 1], [1, 1], ["a", "b", "c"])


def test_wilson_interval_matches_the_formula():
    k, n, z = 30, 100, 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert accuracy_interval(k, n) == pytest.approx((centre - half, centre + half), rel=1e-6)
    assert accuracy_interval(0, 10)[0] == 0.0 and accuracy_interval(10, 10)[1] == pytest.approx(1.0)
    assert all(math.isnan(v) for v in accuracy_interval(0, 0))


def test_bootstrap_cas_brackets_the_estimate_and_shrinks_with_n():
    from rb_crossclass.crossclass import attribution_matrix, cas, class_attribution_vectors

    g = torch.Generator().manual_seed(0)
    k, d = 4, 16
    weight = torch.randn(k, d, generator=g)

    def sample(n):
        labels = torch.arange(n) % k
        feats = torch.relu(torch.randn(n, d, generator=g) + torch.randn(k, d, generator=g)[labels])
        return feats, labels

    widths = []
    for n in (40, 4000):
        feats, labels = sample(n)
        point = cas(attribution_matrix(class_attribution_vectors(feats, weight, labels, k)))
        lo, hi = bootstrap_cas(feats, labels, weight, resamples=200, seed=1)
        assert lo <= point <= hi
        widths.append(hi - lo)
        assert bootstrap_cas(feats, labels, weight, resamples=200, seed=1) == (lo, hi)  # seeded
    assert widths[1] < widths[0] / 3  # ~ 1/sqrt(n)
