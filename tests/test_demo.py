"""The embedded demo: a reduced run through every stage (fast), and the real CLI job (slow).

The demo must run on a machine without ../shared: the real stage reads only what ships in the
package (sample:cifar10) and in pyautoattack (its ResNet-18), which the tests check by running it
with RB_CROSSCLASS_SHARED pointing at an empty folder."""

from __future__ import annotations

import json

import pytest

from rb_crossclass.demo import STAGES, DemoConfig, run_demo


def _check_outputs(out, res, n_models, n_real):
    assert res.stages_done == list(STAGES)
    for png in ("theory/linear_theory.png", "train/cas_vs_epoch.png", "real/attribution_matrix.png",
                "real/attribution_matrix_clean.png"):
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
    boards = sorted((out / "leaderboard").glob("eps*/leaderboard.json"))  # one board per radius
    assert len(boards) == len({load_card(p)["evaluation"]["eps"] for p in cards})
    entries = []
    for path in boards:
        board = json.loads(path.read_text())
        assert len({e["eps_txt"] for e in board["entries"]}) == 1  # never two radii on one board
        entries += [e["model_id"] for e in board["entries"]]
        assert (path.parent / "index.html").stat().st_size > 1000
    assert sorted(entries) == sorted(p.stem for p in cards)
    # the real model on real images: scores and its card (scores only: no AutoAttack, no board row)
    real = json.loads((out / "real" / "crossclass.json").read_text())
    assert real["n_examples"] == n_real and real["dataset"] == "sample:cifar10"
    assert 0 < real["cas"] <= 90 and real["clean_accuracy"] >= 0.8  # pyautoattack's ResNet-18: 94% on 100
    assert real["attack"]["steps"] == 20 and real["attack"]["eps"] == pytest.approx(8 / 255)
    card = load_card(out / "cards" / "cifar10" / "Linf" / "Demo_pyautoattack_ResNet18.json")
    assert card["cross_class"]["cas"] == pytest.approx(real["cas"]) and "PGD-20" in card["footnote"]
    assert "autoattack_acc" not in card and card["cross_class"]["robust_accuracy"] == real["robust_accuracy"]
    assert not (out / "leaderboard_cifar10").exists()
    assert len(res.summary) == 6 and res.summary[0].startswith("0. Real")
    saved = json.loads((out / "demo.json").read_text())
    assert saved["summary"] == res.summary
    assert "sample:cifar10" in saved["inputs"]["real images"]
    assert "model_test.pt" in saved["inputs"]["real model"]
    assert "synthetic" in saved["inputs"]


def test_reduced_demo_runs_every_stage(tmp_path, monkeypatch):
    monkeypatch.setenv("RB_CROSSCLASS_SHARED", str(tmp_path / "no_shared"))  # not needed
    cfg = DemoConfig(eps=(0.4,), epochs=2, n_train=600, n_test=60, theory_samples=800,
                     theory_steps=60, real_examples=10, real_batch_size=5)
    res = run_demo(tmp_path / "out", cfg)
    _check_outputs(tmp_path / "out", res, n_models=2, n_real=10)
    assert res.summary[1].startswith("1. Theory (synthetic") and "cards" in res.summary[5]


@pytest.mark.slow
def test_demo_command(tmp_path, capsys):
    from rb_crossclass.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "6/6 stages" in printed and str(out) in printed
    assert "real images" in printed and "synthetic" in printed
    res = json.loads((out / "demo.json").read_text())
    assert len(res["summary"]) == 6

    class R:  # the saved result, with the attributes _check_outputs reads
        stages_done, summary = res["stages_done"], res["summary"]

    _check_outputs(out, R, n_models=4, n_real=100)


def test_train_summary_concludes_from_adversarial_cas_and_names_the_other_protocol():
    """The paper's protocol (CAS of PGD examples) decides; clean-input CAS is shown beside it, and
    where it orders the recipes the other way the line says so."""
    from rb_crossclass.demo import _train_summary

    def run(recipe, eps, cas, clean_cas):
        return {"recipe": recipe, "eps": eps,
                "history": [{"cas": cas, "clean_cas": clean_cas, "weight_ratio": 0.1}]}

    runs = [run("pgd_at", 0.1, 5.0, 6.0), run("ema_self_distill", 0.1, 4.0, 7.0),  # orders disagree
            run("pgd_at", 0.4, 1.0, 1.7), run("ema_self_distill", 0.4, 2.0, 3.0)]
    line3, line4 = _train_summary(DemoConfig(), runs)
    assert "CAS of PGD examples (the paper's protocol): 5.00 at eps 0.1 vs 1.00 at eps 0.4 (fewer" in line3
    assert "clean-input CAS 6.00 vs 1.70 (the same order)" in line3
    assert "eps 0.1: 4.00 vs 5.00; eps 0.4: 2.00 vs 1.00" in line4
    assert "soft labels keep more cross-class features only at eps 0.4" in line4
    assert "clean-input CAS gives the opposite order at eps 0.1" in line4
    runs[1]["history"][0]["cas"] = 6.0
    assert "keep more cross-class features at every eps" in _train_summary(DemoConfig(), runs)[1]
