"""The cross-class Gaussian model: sampler, closed form vs an independent numerical optimum, the
threshold theorems, exact robust accuracy, and a linear network trained with our recipes."""

from __future__ import annotations

import math

import pytest
import torch

from rb_crossclass.synthetic.crossclass_gaussian import (
    CrossClassGaussian,
    closed_form,
    empirical_robust_accuracy,
    robust_accuracy,
    solve_numerically,
    sweep,
    threshold,
)
from rb_crossclass.synthetic.gaussian_math import expected_max_std_normal, var_min_std_normal


def test_order_statistics_match_known_values():
    assert expected_max_std_normal(1) == pytest.approx(0.0, abs=1e-9)
    assert expected_max_std_normal(2) == pytest.approx(1 / math.sqrt(math.pi), abs=1e-9)
    assert var_min_std_normal(2) == pytest.approx(1 - 1 / math.pi, abs=1e-9)
    z = torch.randn(400_000, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert expected_max_std_normal(4) == pytest.approx(float(z.max(1).values.mean()), abs=5e-3)


def test_sampler_structure():
    m = CrossClassGaussian(num_classes=5, mu=2.0, sigma=0.3)
    x, y = m.sample(5000, torch.Generator().manual_seed(1))
    assert x.shape == (5000, 10) and y.shape == (5000,)
    assert torch.bincount(y).tolist() == [1000] * 5
    onehot = torch.nn.functional.one_hot(y, 5).bool()
    x_e, x_c = x[:, :5], x[:, 5:]
    assert (x_e[~onehot] == 0).all() and (x_c[onehot] == 0).all()
    assert float(x_e[onehot].mean()) == pytest.approx(2.0, abs=0.02)
    assert float(x_c[~onehot].std()) == pytest.approx(0.3, abs=0.01)
    with pytest.raises(ValueError):
        CrossClassGaussian(num_classes=2)


def test_threshold_is_the_quoted_derivation_for_three_classes():
    m = CrossClassGaussian(3, mu=1.0, sigma=0.4)
    assert threshold(m) == pytest.approx((1.0 - 0.4 / math.sqrt(math.pi)) / 2, abs=1e-9)
    assert 0 < threshold(m) < m.mu / 2
    assert threshold(m, alpha=0.4) > threshold(m)
    assert threshold(m, alpha=0.4) < m.mu / 2


def test_closed_form_matches_numerical_optimum_and_thresholds():
    """Numerical robust optimum (Monte Carlo + exact inner max, no closed form used) agrees with
    the closed form; w2 = 0 above eps0 and > 0 below; soft labels keep w2 > 0 up to eps1 > eps0."""
    m = CrossClassGaussian(3, mu=1.0, sigma=0.4)
    e0, e1 = threshold(m, 0.0), threshold(m, 0.4)
    grid = [0.0, e0 - 0.06, (e0 + e1) / 2, e1 + 0.04]
    num_h = solve_numerically(m, grid, alpha=0.0, n_samples=1500, steps=150, seed=3)
    num_s = solve_numerically(m, grid, alpha=0.4, n_samples=1500, steps=150, seed=4)
    for alpha, num in ((0.0, num_h), (0.4, num_s)):
        closed = torch.tensor([closed_form(m, e, alpha) for e in grid], dtype=torch.float64)
        assert (num - closed).abs().max() < 0.03, (alpha, num, closed)
    # hard labels: w2 > 0 below eps0, = 0 above it; w1 > 0 for every eps < mu/2
    assert num_h[1, 1] > 0.08 and abs(num_h[2, 1]) < 0.02 and abs(num_h[3, 1]) < 0.02
    assert (num_h[:, 0] > 0.02).all()
    # soft labels: w2 > 0 between eps0 and eps1 (and larger below eps0), = 0 above eps1
    assert num_s[2, 1] > 0.025 and abs(num_s[3, 1]) < 0.02
    assert num_s[1, 1] > num_h[1, 1] + 0.05


def test_closed_form_for_more_classes():
    m = CrossClassGaussian(5, mu=1.0, sigma=0.4)
    e0 = threshold(m)
    assert e0 == pytest.approx((1.0 - 0.4 * expected_max_std_normal(4)) / 2)
    grid = [e0 - 0.08, e0 + 0.05]
    num = solve_numerically(m, grid, alpha=0.0, n_samples=1500, steps=150, seed=7)
    closed = torch.tensor([closed_form(m, e) for e in grid], dtype=torch.float64)
    assert (num - closed).abs().max() < 0.03
    assert num[0, 1] > 0.1 and abs(num[1, 1]) < 0.02


def test_robust_accuracy_exact_and_increasing_in_w2():
    m = CrossClassGaussian(3, mu=1.0, sigma=0.4)
    x, y = m.sample(200_000, torch.Generator().manual_seed(2))
    for w2, eps in [(0.0, 0.1), (0.5, 0.1), (1.0, 0.2)]:
        exact = robust_accuracy(m, 1.0, w2, eps)
        assert exact == pytest.approx(empirical_robust_accuracy(m, 1.0, w2, eps, x.double(), y), abs=2e-3)
    for eps in (0.0, 0.1):
        acc = [robust_accuracy(m, 1.0, i / 10, eps) for i in range(11)]
        assert all(b >= a - 1e-9 for a, b in zip(acc, acc[1:], strict=False))
        assert acc[-1] > acc[0] + 0.005


def test_sweep_result_is_consistent():
    m = CrossClassGaussian(3)
    r = sweep(m, [0.0, 0.2, 0.45], n_samples=1000, steps=120, accuracy_eps=(0.0,))
    assert r.max_abs_error < 0.04
    assert r.closed_hard[2][1] == 0.0 and r.closed_soft[2][1] == 0.0 and r.closed_hard[1][1] > 0
    d = r.to_dict()
    assert d["eps0"] < d["eps_alpha"] < 0.5 and len(d["accuracy"][0]) == 21


def test_linear_network_loses_cross_class_features_at_large_eps():
    """Linear net (K=10) with our recipes: clean-input CAS and w2/w1 fall with ε; the EMA
    self-distillation teacher's soft labels keep more of them at large ε."""
    pytest.importorskip("rb_crossclass.recipes")
    pytest.importorskip("rb_crossclass.scoring")
    from rb_crossclass.synthetic.crossclass_network import cross_class_weight_ratio, run_network_experiment

    m = CrossClassGaussian(10, mu=1.0, sigma=0.4)
    exp, extra = run_network_experiment(m, ["pgd_at", "ema_self_distill"], [0.1, 0.4], n_train=2000,
                                        n_test=300, epochs=6, seed=0, score_every=6, keep_models=True)
    last = {(r["recipe"], r["eps"]): r["history"][-1] for r in exp.runs}
    assert last[("pgd_at", 0.1)]["clean_cas"] > last[("pgd_at", 0.4)]["clean_cas"] + 1.0
    assert last[("pgd_at", 0.1)]["weight_ratio"] > last[("pgd_at", 0.4)]["weight_ratio"] + 0.01
    assert last[("ema_self_distill", 0.4)]["clean_cas"] > last[("pgd_at", 0.4)]["clean_cas"] + 0.5
    assert last[("pgd_at", 0.1)]["robust_accuracy"] > last[("pgd_at", 0.4)]["robust_accuracy"]
    # the reported ratio is read off the trained head
    net = extra["models"][("pgd_at", 0.4)]
    assert cross_class_weight_ratio(net, 10) == pytest.approx(last[("pgd_at", 0.4)]["weight_ratio"])


def test_study_inputs_are_checked_before_any_work(tmp_path):
    from rb_crossclass.synthetic import SyntheticError, check_crossclass_inputs, run_crossclass_study

    ok = {"classes": 3, "net_classes": 10, "mu": 1.0, "sigma": 0.4, "alpha": 0.4, "recipes": ["pgd_at"]}
    check_crossclass_inputs(**ok)
    for change, message in (({"recipes": ["nope"]}, "unknown recipe"), ({"recipes": ["kd"]}, "teacher"),
                            ({"classes": 2}, None), ({"alpha": 1.0}, "alpha")):
        with pytest.raises(SyntheticError, match=message):
            check_crossclass_inputs(**{**ok, **change})
    with pytest.raises(SyntheticError):
        run_crossclass_study(tmp_path / "out", alpha=-0.1)
    assert not (tmp_path / "out").exists()


def test_theory_study_alone_writes_its_files_and_lines(tmp_path):
    from rb_crossclass.synthetic import run_crossclass_study

    report = run_crossclass_study(tmp_path, network=False)
    assert report.files == [tmp_path / "linear_theory.json", tmp_path / "linear_theory.png"]
    assert all(f.is_file() for f in report.files)
    assert report.lines[0] == f"wrote {tmp_path}/linear_theory.json, {tmp_path}/linear_theory.png"
    assert report.lines[1].startswith("two-weight theory (K=3") and len(report.lines) == 2
