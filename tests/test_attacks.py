"""PGD: threat-set constraints, input-only gradients, modes, restarts, targeted, vs torchattacks."""

from __future__ import annotations

import pytest
import torch

from rb_crossclass.attacks import PGDConfig, pgd
from rb_crossclass.core.threat import format_eps as eps_to_string
from rb_crossclass.core.threat import parse_eps

from conftest import needs_shared


def test_parse_and_format_eps():
    assert parse_eps("8/255") == pytest.approx(8 / 255)
    assert parse_eps("0.0314") == pytest.approx(0.0314)
    assert parse_eps(0.5) == 0.5
    for bad in ("eight", "1/0", "-0.1"):
        with pytest.raises(ValueError):
            parse_eps(bad)
    assert eps_to_string(8 / 255) == "8/255"
    assert eps_to_string(0.5) == "0.5"
    assert eps_to_string(parse_eps("4/255")) == "4/255"


def test_default_steps_follow_paper_protocol():
    assert PGDConfig(eps=8 / 255).step == pytest.approx(2 / 255)
    assert PGDConfig(eps=0.5, norm="L2").step == pytest.approx(0.5 / 8)
    with pytest.raises(ValueError):
        PGDConfig(eps=0.1, norm="L1")


@pytest.mark.parametrize("norm,eps", [("Linf", 8 / 255), ("L2", 0.5)])
def test_pgd_stays_in_ball_and_box_and_leaves_params_alone(tiny_model, norm, eps):
    x = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 10, (16,), generator=torch.Generator().manual_seed(1))
    res = pgd(tiny_model, x, y, PGDConfig(eps=eps, steps=5, norm=norm),
              generator=torch.Generator().manual_seed(2))
    delta = (res.x_adv - x).flatten(1)
    size = delta.abs().max(1).values if norm == "Linf" else delta.norm(dim=1)
    assert (size <= eps + 1e-5).all()
    assert res.x_adv.min() >= 0 and res.x_adv.max() <= 1
    assert all(p.grad is None for p in tiny_model.parameters())
    with torch.no_grad():
        logits, feats = tiny_model.forward_with_features(res.x_adv)
    assert torch.allclose(res.logits, logits, atol=1e-5) and torch.allclose(res.features, feats, atol=1e-5)
    # the attack raises the loss
    ce = torch.nn.functional.cross_entropy
    with torch.no_grad():
        assert ce(tiny_model(res.x_adv), y) > ce(tiny_model(x), y)


def test_pgd_is_reproducible_with_a_generator(tiny_model):
    x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    y = torch.zeros(8, dtype=torch.long)
    cfg = PGDConfig(eps=8 / 255, steps=3)
    a = pgd(tiny_model, x, y, cfg, generator=torch.Generator().manual_seed(5)).x_adv
    b = pgd(tiny_model, x, y, cfg, generator=torch.Generator().manual_seed(5)).x_adv
    c = pgd(tiny_model, x, y, cfg, generator=torch.Generator().manual_seed(6)).x_adv
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_pgd_in_train_mode_updates_batchnorm_like_the_classic_loop():
    from rb_crossclass.models import create_model_source

    model = create_model_source("timm:resnet18").train()
    bn = model.net.bn1
    before = bn.running_mean.clone()
    x = torch.rand(4, 3, 32, 32)
    pgd(model, x, torch.zeros(4, dtype=torch.long), PGDConfig(eps=8 / 255, steps=1))
    assert model.training and not torch.equal(before, bn.running_mean)


def test_restarts_keep_successes_of_the_first_restart(tiny_model):
    x = torch.rand(32, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = tiny_model(x).argmax(1)
    one = pgd(tiny_model, x, y, PGDConfig(eps=2 / 255, steps=2), generator=torch.Generator().manual_seed(0))
    three = pgd(tiny_model, x, y, PGDConfig(eps=2 / 255, steps=2, restarts=3),
                generator=torch.Generator().manual_seed(0))
    fooled_one = one.logits.argmax(1) != y
    fooled_three = three.logits.argmax(1) != y
    assert (fooled_three | ~fooled_one).all()  # every success of restart 1 is kept
    assert fooled_three.sum() >= fooled_one.sum()


def test_targeted_attack_reaches_the_target():
    from rb_crossclass.models import wrap_model

    torch.manual_seed(0)
    model = wrap_model(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))).eval()
    x = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model(x).argmax(1)
    target = (y + 1) % 10
    cfg = PGDConfig(eps=0.5, steps=20, step_size=0.05)
    res = pgd(model, x, y, cfg.with_(targeted=True), target=target)
    untargeted = pgd(model, x, y, cfg)
    hit = (res.logits.argmax(1) == target).float().mean()
    assert hit >= 0.8
    assert hit > (untargeted.logits.argmax(1) == target).float().mean()
    with pytest.raises(ValueError):
        pgd(model, x, y, PGDConfig(eps=0.1, targeted=True))


@needs_shared
@pytest.mark.slow
def test_robust_accuracy_not_above_torchattacks_pgd(aa_resnet18, cifar_test):
    import torchattacks

    x, y = cifar_test[0][:48], cifar_test[1][:48]
    eps, steps = 1 / 255, 5
    ours = pgd(aa_resnet18, x, y, PGDConfig(eps=eps, steps=steps, step_size=eps / 4),
               generator=torch.Generator().manual_seed(0))
    ours_acc = (ours.logits.argmax(1) == y).float().mean().item()
    torch.manual_seed(0)
    attack = torchattacks.PGD(aa_resnet18, eps=eps, alpha=eps / 4, steps=steps, random_start=True)
    x_ta = attack(x, y)
    with torch.no_grad():
        theirs_acc = (aa_resnet18(x_ta).argmax(1) == y).float().mean().item()
        clean_acc = (aa_resnet18(x).argmax(1) == y).float().mean().item()
    assert ours_acc < clean_acc  # the attack does something on a real model
    assert ours_acc <= theirs_acc + 2 / 48, (ours_acc, theirs_acc)  # within sampling noise


# --------------------------------------------------------------------------- torchattacks
@pytest.fixture(scope="module")
def zoo_model_and_sample():
    from rb_crossclass import zoo
    from rb_crossclass.data import open_split

    model = zoo.build_zoo_model(zoo.find_entry("RBCrossclass2025CPU_PGD-AT")).eval()
    s = open_split("sample:cifar10", "test", 40)
    return model, s.x, s.y


def test_our_pgd_equals_torchattacks_pgd(zoo_model_and_sample):
    """Cross-check on a robust model and real images: PGD-20 without random start, step eps/4, is
    the same algorithm in both (sign of the input gradient, projection, [0,1] clip); only float
    rounding may flip the sign of a near-zero gradient component."""
    import torchattacks

    from rb_crossclass.crossclass import score_examples

    model, x, y = zoo_model_and_sample
    for eps in (2 / 255, 8 / 255):
        ours = pgd(model, x, y, PGDConfig(eps=eps, steps=20, random_start=False)).x_adv
        theirs = torchattacks.PGD(model, eps=eps, alpha=eps / 4, steps=20, random_start=False)(x, y)
        differ = ((ours - theirs).abs() > 1e-6).float().mean().item()
        assert differ < 1e-3, (eps, differ)
        a = score_examples(model, x, ours, y, progress=False)
        b = score_examples(model, x, theirs, y, progress=False)
        assert a.robust_accuracy == b.robust_accuracy
        assert a.cas == pytest.approx(b.cas, abs=1e-3)
    assert 0 < a.robust_accuracy < a.clean_accuracy  # at 8/255 the attack changes predictions


def test_torchattacks_spec_parsing_and_errors():
    from rb_crossclass.attacks.torchattacks_adapter import TorchattacksError, parse_spec

    assert parse_spec("torchattacks:FGSM") == ("FGSM", {})
    name, kw = parse_spec("torchattacks:PGD:eps=8/255, alpha=0.5,steps=20,random_start=false,x=none")
    assert name == "PGD" and kw == {"eps": pytest.approx(8 / 255), "alpha": 0.5, "steps": 20,
                                    "random_start": False, "x": None}
    for bad in ("torchattacks:", "torchattacks:P-GD", "torchattacks:PGD:eps", "pgd"):
        with pytest.raises(TorchattacksError):
            parse_spec(bad)


def test_score_cli_with_a_torchattacks_attack(zoo_model_and_sample, tmp_path, capsys):
    import json

    import torchattacks

    from rb_crossclass.cli import main
    from rb_crossclass.crossclass import score_examples

    model, x, y = zoo_model_and_sample
    args = ["score", "--model", "zoo:RBCrossclass2025CPU_PGD-AT", "--dataset", "sample:cifar10",
            "--n-examples", "40", "--no-progress", "--device", "cpu"]
    assert main([*args, "--attack", "torchattacks:FGSM:eps=8/255", "--out", str(tmp_path / "f")]) == 0
    got = json.loads((tmp_path / "f" / "crossclass.json").read_text())
    assert got["attack"]["name"] == "torchattacks" and got["attack"]["attack"] == "FGSM"
    assert got["attack"]["eps"] == pytest.approx(8 / 255)
    ref = score_examples(model, x, torchattacks.FGSM(model, eps=8 / 255)(x, y), y, progress=False)
    assert got["cas"] == pytest.approx(ref.cas, rel=1e-9) and got["robust_accuracy"] == ref.robust_accuracy
    assert "torchattacks:FGSM:eps=8/255" in capsys.readouterr().out
    assert main([*args, "--attack", "torchattacks:Nope", "--out", str(tmp_path / "n")]) == 1
    assert "torchattacks has no attack 'Nope'; attacks: APGD" in capsys.readouterr().err
    assert main([*args, "--attack", "torchattacks:PGD:epsilon=1", "--out", str(tmp_path / "n")]) == 1
    assert "its arguments: eps, alpha, steps, random_start" in capsys.readouterr().err
    assert main([*args, "--attack", "fgsm", "--out", str(tmp_path / "n")]) == 1
    assert "argument --attack" in capsys.readouterr().err


def test_score_cli_with_a_torchattacks_attack_seeds_the_cas_bootstrap(zoo_model_and_sample, tmp_path,
                                                                       monkeypatch):
    """--seed reaches the scoring (its CAS bootstrap) on the torchattacks path as on the PGD path;
    it was left at 0 there. (CAS intervals need 20 points a class, more than the sample has, so the
    seed handed over is checked.)"""
    from rb_crossclass.cli import main
    from rb_crossclass.crossclass import job

    seen = []
    real = job.score_examples

    def spy(*args, **kwargs):
        seen.append(kwargs.get("seed"))
        return real(*args, **kwargs)

    monkeypatch.setattr(job, "score_examples", spy)
    args = ["score", "--model", "zoo:RBCrossclass2025CPU_PGD-AT", "--dataset", "sample:cifar10",
            "--n-examples", "20", "--no-progress", "--device", "cpu",
            "--attack", "torchattacks:FGSM:eps=8/255"]
    assert main([*args, "--seed", "3", "--out", str(tmp_path / "s")]) == 0
    assert seen == [3]
