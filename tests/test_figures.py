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


# --------------------------------------------------------------------------- text drawn literally
MATH_LIKE = ["$x^{$", "a\\b_c^d{e}", "50$ or \\$ 5", "$\\frac{1}{0}$", "_{^}", "\\"]


def _drawn_texts(monkeypatch, modules) -> list:
    """Patch ``new_figure`` in ``modules``; the returned list receives every figure made."""
    from rb_crossclass.figures import canvas

    figures = []

    def recording(*args, **kwargs):
        fig = canvas.new_figure(*args, **kwargs)
        figures.append(fig)
        return fig

    for module in modules:
        monkeypatch.setattr(module, "new_figure", recording)
    return figures


def _shown(figures) -> list[str]:
    """Every text of ``figures`` as matplotlib shows it; none may be parsed as mathtext."""
    from matplotlib.text import Text

    shown = []
    for fig in figures:
        for t in fig.findobj(Text):
            text, math = t._preprocess_math(t.get_text())
            assert not (math and any(m in t.get_text() for m in ("{", "\\", "^"))), t.get_text()
            shown.append(text)
    return shown


@pytest.mark.parametrize("text", MATH_LIKE)
def test_every_figure_draws_data_text_literally(tmp_path, monkeypatch, text):
    """Recipe (issue 19): a card file named '$x^{$.json' crashed the board build, its ID parsed as
    mathtext in the per-model heatmap's title. Names, titles, class and attack names are text."""
    from rb_crossclass.figures import (
        curves,
        dynamics,
        heatmap,
        plot_attribution_matrix,
        plot_curves,
        plot_matrix_difference,
        scatter,
        synthetic,
    )
    from rb_crossclass.figures.dynamics import plot_dynamics
    from rb_crossclass.figures.synthetic import plot_cas_curves

    figures = _drawn_texts(monkeypatch, (curves, dynamics, heatmap, scatter, synthetic))
    m = [[1.0, 0.2], [0.2, 1.0]]
    plot_attribution_matrix(m, [text, text + "2"], tmp_path / "a.png", title=text)
    plot_matrix_difference(m, m, [text, "b"], tmp_path / "d.png", title=text)
    records = [{"epoch": e, "clean_acc": 0.5, "robust_acc": 0.3, "cas": 2.0, "attack": text} for e in (1, 2)]
    plot_curves(records, tmp_path / "c.png", 2, title=text)
    hist = [{"epoch": 1, "robust_acc": 30.0, "cas": 1.0}, {"epoch": 2, "robust_acc": 40.0, "cas": 2.0}]
    plot_dynamics([{"name": text, "recipe": text, "eps": text, "epochs": hist}],
                  tmp_path / "y.png", title=text)
    runs = [{"eps": 0.1, "recipe": text,
             "history": [{"epoch": 1, "cas": 1.0, "clean_cas": 0.5, "weight_ratio": None,
                          "robust_accuracy": 0.5}]}]
    plot_cas_curves(runs, tmp_path / "s.png", 3)
    rows = [{"model_id": text, "rank": i + 1, "official": False, "board_acc": 40.0 + i,
             "worst_class_robust": 10.0 + i, "cas": 3.0 - i, "normalized_cas": 0.1 * i}
            for i in range(3)]
    scatter.plot_cas_vs_robust(rows, tmp_path / "r.png", title=text)
    shown = _shown(figures)
    assert sum(text in s for s in shown) >= 8, shown


def test_figures_never_go_through_latex(tmp_path, monkeypatch):
    """A user's matplotlibrc with text.usetex: True must not send model IDs to LaTeX."""
    import matplotlib

    from rb_crossclass.figures import plot_attribution_matrix

    monkeypatch.setitem(matplotlib.rcParams, "text.usetex", True)
    path = plot_attribution_matrix([[1.0, 0.2], [0.2, 1.0]], ["a_b", "c^{d"], tmp_path / "h.png",
                                   title="$x^{$ model_1 100%")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _epoch_tick_labels(fig) -> list[str]:
    """The tick labels of every axis labelled ``epoch`` in ``fig``, as drawn."""
    fig.canvas.draw()
    return [t.get_text() for ax in fig.axes if ax.get_xlabel() == "epoch" for t in ax.get_xticklabels()]


def test_a_one_epoch_curve_has_integer_epoch_ticks(tmp_path, monkeypatch):
    """Every curve over epochs ticks whole epochs, also for a one-epoch history (matplotlib's
    default would write 0.945, 0.960, ... around a single point)."""
    from rb_crossclass.figures import curves, dynamics, synthetic

    figures = _drawn_texts(monkeypatch, (curves, dynamics, synthetic))
    curves.plot_curves([{"epoch": 1, "clean_acc": 0.5, "robust_acc": 0.3, "cas": 2.0}], tmp_path / "c.png", 1)
    dynamics.plot_dynamics([{"name": "r", "recipe": "pgd_at", "eps": "8/255",
                             "epochs": [{"epoch": 1, "robust_acc": 30.0, "cas": 1.0}]}], tmp_path / "y.png")
    band = {"mean": [1.0], "min": [1.0], "max": [1.0]}
    dynamics.plot_seed_dynamics([{
        "name": "r", "recipe": "pgd_at", "eps": "8/255", "seeds": [0],
        "curves": {"epochs": [1], "cas": band, "robust_acc": band,
                   "seeds": {0: {"cas": [1.0], "robust_acc": [1.0]}}},
        "per_seed": {0: {"best_epoch": 1, "cas_best": 1.0, "robust_best": 1.0, "cas_gap": 0.0}},
        "metrics": {"cas_gap": {"mean": 0.0, "min": 0.0, "max": 0.0, "ci95": None, "n": 1}}}],
        tmp_path / "z.png")
    synthetic.plot_cas_curves([{"eps": 0.1, "recipe": "pgd_at", "history": [
        {"epoch": 1, "cas": 1.0, "clean_cas": 0.5, "weight_ratio": None, "robust_accuracy": 0.5}]}],
        tmp_path / "s.png", 3)
    assert len(figures) == 4
    for fig in figures:
        labels = _epoch_tick_labels(fig)
        assert labels and all(label.lstrip("−-").isdigit() for label in labels), labels


def test_rank_correlations_never_pool_comparability_groups(tmp_path, monkeypatch):
    """Models measured under different protocols (another N, ε or attack: another group) get one
    Spearman ρ per group, each named, never one over all; a single group keeps the plain form."""
    from rb_crossclass.figures import scatter
    from rb_crossclass.leaderboard.render import correlation_text

    def row(i: int, group: str, acc: float, cas: float) -> dict:
        return {"model_id": f"m{i}", "rank": i + 1, "official": False, "board_acc": acc,
                "worst_class_robust": acc - 5, "cas": cas, "normalized_cas": cas / 10, "group": group}

    # within A and within B CAS rises with accuracy; pooled, the order would be reversed
    rows = [row(0, "A", 50, 1.0), row(1, "A", 51, 2.0), row(2, "A", 52, 3.0),
            row(3, "B", 10, 7.0), row(4, "B", 11, 8.0), row(5, "B", 12, 9.0)]
    _, correlations = scatter.plot_cas_vs_robust(rows, tmp_path / "r.png", title="t")
    first = [c for c in correlations if c["x"] == "CAS" and c["y"] == "AutoAttack accuracy"]
    assert [(c["group"], c["n"], c["rho"]) for c in first] == [("A", 3, 1.0), ("B", 3, 1.0)]
    pooled, _ = scatter.rank_correlation([r["board_acc"] for r in rows], [r["cas"] for r in rows])
    assert pooled < 0  # what the board showed before: a number no group supports
    assert "within group B: ρ = 1.00 over 3 models" in correlation_text(first[1])
    figures = _drawn_texts(monkeypatch, (scatter,))
    scatter.plot_cas_vs_robust(rows, tmp_path / "g.png", title="t")
    shown = _shown(figures)
    assert "m0 (A)" in shown and "m5 (B)" in shown  # the plot says which group each point is in
    _, single = scatter.plot_cas_vs_robust(rows[:3], tmp_path / "s.png", title="t")
    assert "group" not in single[0] and single[0]["n"] == 3
    assert correlation_text(single[0]).startswith("Spearman rank correlation of CAS with AutoAttack "
                                                  "accuracy: ρ")
