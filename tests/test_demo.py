"""The embedded demo: a reduced run through every stage (fast), and the real CLI job (slow)."""

from __future__ import annotations

import json

import pytest

from rb_crossclass.demo import STAGES, DemoConfig, run_demo


def _check_outputs(out, res, n_models):
    assert res.stages_done == list(STAGES)
    for png in ("theory/linear_theory.png", "train/cas_vs_epoch.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    theory = json.loads((out / "theory" / "linear_theory.json").read_text())
    assert theory["eps0"] < theory["eps_alpha"] < theory["model"]["mu"] / 2
    from rb_crossclass.cards import load_card

    cards = sorted((out / "cards" / "synthetic_crossclass" / "Linf").glob("*.json"))
    assert len(cards) == n_models
    for path in cards:
        card = load_card(path)  # validated against the schema
        assert card["cross_class"]["cas"] >= 0
        assert card["training"]["recipe"] in ("pgd_at", "ema_self_distill")
        assert (out / "train" / "models" / f"{path.stem}.safetensors").is_file()
    board = json.loads((out / "leaderboard" / "leaderboard.json").read_text())
    assert sorted(e["model_id"] for e in board["entries"]) == sorted(p.stem for p in cards)
    assert (out / "leaderboard" / "index.html").stat().st_size > 1000
    assert len(res.summary) == 5
    saved = json.loads((out / "demo.json").read_text())
    assert saved["summary"] == res.summary


def test_reduced_demo_runs_every_stage(tmp_path):
    cfg = DemoConfig(eps=(0.4,), epochs=2, n_train=600, n_test=60, theory_samples=800,
                     theory_steps=60)
    res = run_demo(tmp_path, cfg)
    _check_outputs(tmp_path, res, n_models=2)
    assert res.summary[0].startswith("1. Theory") and "cards" in res.summary[4]


@pytest.mark.slow
def test_demo_command(tmp_path, capsys):
    from rb_crossclass.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "5/5 stages" in printed and str(out) in printed
    res = json.loads((out / "demo.json").read_text())
    assert len(res["summary"]) == 5

    class R:  # the saved result, with the attributes _check_outputs reads
        stages_done, summary = res["stages_done"], res["summary"]

    _check_outputs(out, R, n_models=4)
