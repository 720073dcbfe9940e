"""The leaderboard scatter's rank correlation: Spearman's ρ with an exact p-value for few models."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from rb_crossclass.figures.scatter import EXACT_P_UP_TO, rank_correlation


def test_three_models_in_perfect_order_are_not_significant():
    # 3! = 6 pairings, two of them (this order and its reverse) reach |rho| = 1: p = 2/6
    assert rank_correlation([4.2, 4.39, 7.4], [0.0, 85.8, 87.2]) == (1.0, pytest.approx(1 / 3))
    assert rank_correlation([3, 2, 1], [1, 2, 3]) == (-1.0, pytest.approx(1 / 3))


@pytest.mark.parametrize("n", [4, 5, 6, 7])
def test_exact_p_matches_a_loop_over_every_pairing(n):
    rng = np.random.default_rng(n)
    xs, ys = rng.normal(size=n).tolist(), rng.normal(size=n).tolist()
    rho, p = rank_correlation(xs, ys)
    assert rho == pytest.approx(spearmanr(xs, ys).statistic)
    reached = [abs(spearmanr(xs, list(perm)).statistic) >= abs(rho) - 1e-9
               for perm in itertools.permutations(ys)]
    assert p == pytest.approx(sum(reached) / len(reached))


def test_many_models_use_scipys_p_and_degenerate_inputs_have_none():
    rng = np.random.default_rng(0)
    xs = rng.normal(size=30)
    ys = xs + rng.normal(size=30)
    res = spearmanr(xs, ys)
    expected = (pytest.approx(res.statistic), pytest.approx(res.pvalue))
    assert rank_correlation(xs.tolist(), ys.tolist()) == expected
    assert rank_correlation([1, 2], [1, 2]) == (None, None)
    assert rank_correlation([1, 1, 1], [1, 2, 3]) == (None, None)


def test_exact_p_at_the_largest_exact_size_is_fast_and_a_share_of_pairings():
    xs = list(range(EXACT_P_UP_TO))
    rho, p = rank_correlation(xs, xs)
    assert rho == 1.0 and p == pytest.approx(2 / math.factorial(EXACT_P_UP_TO))
