"""Robust-sparse / non-robust-dense patch model: data geometry, activation, threat set, and the
feature-learning claims of standard vs adversarial training (cheap configuration, fixed seed)."""

from __future__ import annotations

import math

import pytest
import torch

from rb_crossclass.synthetic.patch_features import (
    PatchConfig,
    feature_directions,
    flip_accuracy,
    forward,
    hadamard,
    init_filters,
    one_step_attack,
    run_experiment,
    sample,
    smoothed_relu,
)


def test_features_are_orthonormal_and_data_has_the_stated_structure():
    cfg = PatchConfig()
    h = hadamard(32)
    assert torch.equal(h @ h.T, 32 * torch.eye(32, dtype=h.dtype))
    u, v = feature_directions(cfg)
    feats = torch.cat([u, v])
    assert torch.allclose(feats @ feats.T, torch.eye(8), atol=1e-6)
    x, y = sample(cfg, 400, torch.Generator().manual_seed(0))
    assert x.shape == (400, 16, 64)
    proj_v = torch.einsum("npd,nd->np", x, v[y])
    assert float(proj_v.mean()) == pytest.approx(cfg.beta, abs=0.01)
    proj_u = torch.einsum("npd,nd->np", x, u[y])
    assert ((proj_u > 0.5).sum(1) == 1).all()  # exactly one patch carries the robust feature


def test_smoothed_relu_is_continuous_with_continuous_slope():
    q, rho = 3, 0.5
    z = torch.tensor([-1.0, 0.0, rho - 1e-4, rho, rho + 1e-4, 2.0], dtype=torch.float64, requires_grad=True)
    s = smoothed_relu(z, q, rho)
    (g,) = torch.autograd.grad(s.sum(), z)
    assert s[0] == 0 and s[1] == 0
    s = s.detach()
    assert float(s[3]) == pytest.approx(rho / q, abs=1e-12)
    assert float(s[5]) == pytest.approx(2.0 - (1 - 1 / q) * rho)
    assert float(g[2]) == pytest.approx(1.0, abs=1e-3) and float(g[4]) == pytest.approx(1.0)


def test_attacks_stay_in_the_threat_set():
    cfg = PatchConfig(filters=5)
    u, v = feature_directions(cfg)
    x, y = sample(cfg, 50, torch.Generator().manual_seed(1))
    w = init_filters(cfg, 0)
    delta = one_step_attack(w, x, y, cfg, v)
    assert torch.allclose(delta.norm(dim=2), torch.full((50, 16), cfg.eps), atol=1e-5)
    assert torch.einsum("npd,kd->npk", delta, u).abs().max() < 1e-6  # robust feature untouched
    assert cfg.beta * math.sqrt(2) <= cfg.eps  # the oracle flip is inside the set
    # a filter bank reading only v: the flip makes every sample look like another class
    w_v = torch.zeros(cfg.num_classes, 1, cfg.dim)
    w_v[:, 0] = v
    assert float((forward(w_v, x, cfg).argmax(1) == y).float().mean()) == 1.0
    assert flip_accuracy(w_v, x, y, cfg, v) == 0.0


def test_adversarial_training_learns_the_robust_feature():
    cfg = PatchConfig(filters=20, steps=150, n_train=150, n_test=200, track_every=150, pgd_steps=5)
    exp = run_experiment(cfg, seed=0)
    std, adv = exp.standard["history"][-1], exp.adversarial["history"][-1]
    assert std["clean_accuracy"] > 0.95 and adv["clean_accuracy"] > 0.95
    # standard training: mostly the dense non-robust feature, attack along −v_y, not robust
    assert std["gamma_v"] > 2 * std["gamma_u"]
    assert std["attack_cosine"] > 0.9
    assert std["robust_accuracy"] < 0.1
    # adversarial training: robust-feature alignment grows, non-robust suppressed
    assert exp.ratio_adversarial > 10 * exp.ratio_standard
    assert adv["gamma_u"] > 3 * std["gamma_u"] and adv["gamma_v"] < 0.5 * std["gamma_v"]
    assert adv["robust_accuracy"] > std["robust_accuracy"] + 0.2
    assert adv["flip_accuracy"] > 0.5


def test_cli_patch_figure_format(tmp_path, capsys):
    from rb_crossclass.cli import main

    out = tmp_path / "patch"
    assert main(["synthetic", "patch", "--steps", "12", "--n-train", "40", "--n-test", "40",
                 "--format", "svg", "--dpi", "72", "--out", str(out)]) == 0
    assert (out / "patch_alignment.svg").read_text().lstrip().startswith("<?xml")
    assert not (out / "patch_alignment.png").exists()
    assert "patch_alignment.svg" in capsys.readouterr().out
