"""Recipes: each loss equals an independent hand computation on a fixed batch."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rb_crossclass.models import wrap_model
from rb_crossclass.recipes import RecipeError, available_recipes, create_recipe

from conftest import tiny_convnet

EPS = 8 / 255


def _batch(n: int = 6, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 16, 16, generator=g), torch.randint(0, 10, (n,), generator=g)


def _hand_ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # -log softmax written out: logsumexp(z) - z_y
    z = logits.double()
    return (z.exp().sum(1).log() - z[torch.arange(len(y)), y]).mean()


def _hand_kl(p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """Σ p (log p − log q) per sample with q = softmax(logits_q)."""
    z = logits_q.double()
    log_q = z - z.exp().sum(1, keepdim=True).log()
    return (p.double() * (p.double().log() - log_q)).sum(1)


class TinyBN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4, 10)

    def forward(self, x):
        return self.fc(F.relu(self.bn(self.conv(x))).mean((2, 3)))


@pytest.fixture
def model():
    return wrap_model(tiny_convnet()).train()


def test_registry_names_and_errors():
    assert set(available_recipes()) >= {"standard", "pgd_at", "trades", "label_smoothing", "kd",
                                        "ema_self_distill"}
    with pytest.raises(RecipeError, match="unknown recipe"):
        create_recipe("nope")
    with pytest.raises(RecipeError, match="no parameter"):
        create_recipe("pgd_at", beta=3)
    with pytest.raises(RecipeError, match="bn_mode"):
        create_recipe("pgd_at", bn_mode="frozen")
    assert create_recipe("pgd_at", eps="4/255").inner.config.eps == pytest.approx(4 / 255)
    assert create_recipe("trades").inner.beta == 6.0 and create_recipe("trades").inner.bn_mode == "eval"
    assert create_recipe("pgd_at").inner.bn_mode == "train"


def test_standard_is_cross_entropy(model):
    x, y = _batch()
    loss = create_recipe("standard").loss(model, x, y).total
    assert loss.item() == pytest.approx(_hand_ce(model(x), y).item(), rel=1e-6)


def test_pgd_at_loss_is_ce_on_fgsm_point(model):
    # one full-size step without random start = FGSM, computed here with plain autograd
    x, y = _batch()
    rec = create_recipe("pgd_at", eps=EPS, step_size=EPS, steps=1, random_start=False)
    loss = rec.loss(model, x, y).total
    xr = x.clone().requires_grad_(True)
    F.cross_entropy(model(xr), y, reduction="sum").backward()
    x_adv = (x + EPS * xr.grad.sign()).clamp(0, 1)
    assert (x_adv - x).abs().max() <= EPS + 1e-7
    assert loss.item() == pytest.approx(_hand_ce(model(x_adv), y).item(), rel=1e-6)
    assert loss.item() > _hand_ce(model(x), y).item()  # the attack raised the loss


def test_pgd_at_bn_mode_controls_running_stats():
    x, y = _batch(8)
    for mode, expected in (("train", 3 + 1 + 1), ("eval", 1)):
        net = wrap_model(TinyBN()).train()
        create_recipe("pgd_at", steps=3, bn_mode=mode).loss(net, x, y)
        # attack steps (+ the attack's final forward) update BN only in train mode; +1 training forward
        assert int(net.net.bn.num_batches_tracked) == expected
        assert net.training


def test_trades_loss_matches_hand_computation(model):
    x, y = _batch()
    beta = 6.0
    rec = create_recipe("trades", beta=beta, eps=EPS, step_size=EPS / 2, steps=1)
    torch.manual_seed(123)
    loss = rec.loss(model, x, y).total

    torch.manual_seed(123)  # same uniform random start as the attack draws
    model.eval()
    with torch.no_grad():
        p = model(x).softmax(1)
    delta = ((torch.rand(x.shape) * 2 - 1) * EPS)
    delta = ((x + delta).clamp(0, 1) - x).requires_grad_(True)
    _hand_kl(p, model(x + delta)).sum().backward()
    delta = (delta + EPS / 2 * delta.grad.sign()).clamp(-EPS, EPS).detach()
    x_adv = (x + delta).clamp(0, 1)
    model.train()
    logits = model(x)
    expected = _hand_ce(logits, y) + beta * _hand_kl(logits.softmax(1), model(x_adv)).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_label_smoothing_loss(model):
    x, y = _batch()
    alpha = 0.2
    loss = create_recipe("label_smoothing", alpha=alpha, inner="none").loss(model, x, y).total
    logits = model(x).double()
    target = torch.full((len(y), 10), alpha / 10, dtype=torch.float64)
    for i, c in enumerate(y.tolist()):
        target[i, c] = 1 - alpha + alpha / 10
    hand = -(target * logits.log_softmax(1)).sum(1).mean()
    assert loss.item() == pytest.approx(hand.item(), rel=1e-6)
    assert loss.item() == pytest.approx(F.cross_entropy(logits, y, label_smoothing=alpha).item(), rel=1e-6)


def test_kd_loss_with_teacher_changes_loss_as_specified(model):
    x, y = _batch()
    teacher = TinyBN().train()  # the recipe must put it in eval mode
    running_mean = teacher.bn.running_mean.clone()
    lam, t = 0.3, 4.0
    rec = create_recipe("kd", teacher=teacher, lam=lam, temperature=t, inner="none")
    loss = rec.loss(model, x, y).total
    assert not teacher.training and torch.equal(teacher.bn.running_mean, running_mean)
    with torch.no_grad():
        p_t = (teacher(x).double() / t).softmax(1)
    s = model(x)
    hand = (1 - lam) * _hand_ce(s, y) + lam * t * t * _hand_kl(p_t, s.double() / t).mean()
    assert loss.item() == pytest.approx(hand.item(), rel=1e-6)
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    ce_only = create_recipe("kd", teacher=teacher, lam=0.0, inner="none").loss(model, x, y).total
    assert ce_only.item() == pytest.approx(_hand_ce(model(x), y).item(), rel=1e-6)
    assert not math.isclose(loss.item(), ce_only.item(), rel_tol=1e-3)


def test_kd_with_pgd_inner_teacher_sees_adversarial_input(model):
    x, y = _batch()
    teacher = wrap_model(tiny_convnet()).eval()
    torch.nn.init.normal_(teacher.net.fc.weight, std=0.5, generator=torch.Generator().manual_seed(5))
    rec = create_recipe("kd", teacher=teacher, lam=0.5, temperature=2.0, inner="pgd_at",
                        eps=EPS, step_size=EPS, steps=1, random_start=False)
    loss = rec.loss(model, x, y).total
    xr = x.clone().requires_grad_(True)
    F.cross_entropy(model(xr), y, reduction="sum").backward()
    x_adv = (x + EPS * xr.grad.sign()).clamp(0, 1)
    with torch.no_grad():
        p_t = (teacher(x_adv).double() / 2).softmax(1)
    s = model(x_adv)
    hand = 0.5 * _hand_ce(s, y) + 0.5 * 4 * _hand_kl(p_t, s.double() / 2).mean()
    assert loss.item() == pytest.approx(hand.item(), rel=1e-6)


def test_ema_teacher_decay_is_exact_and_state_roundtrips(model):
    decay = 0.9
    rec = create_recipe("ema_self_distill", decay=decay, inner="none")
    rec.after_step(model)  # the teacher starts as a copy of the student
    s0 = {k: v.clone() for k, v in model.state_dict().items()}
    assert all(torch.equal(rec.teacher.state_dict()[k], v) for k, v in s0.items())
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    x, y = _batch()
    for _ in range(2):
        before = {k: v.clone() for k, v in rec.teacher.state_dict().items()}
        F.cross_entropy(model(x), y).backward()
        opt.step()
        opt.zero_grad()
        rec.after_step(model)
        for k, s in model.state_dict().items():
            expected = decay * before[k].double() + (1 - decay) * s.double()
            assert torch.allclose(rec.teacher.state_dict()[k].double(), expected, rtol=0, atol=1e-7), k
            assert not torch.equal(rec.teacher.state_dict()[k], s)
    assert rec.num_updates == 3
    fresh = create_recipe("ema_self_distill", decay=decay, inner="none")
    fresh.load_state_dict(rec.state_dict())
    fresh.after_step(model)
    rec.after_step(model)
    assert all(torch.equal(fresh.teacher.state_dict()[k], v) for k, v in rec.teacher.state_dict().items())


def test_ema_lambda_ramp_and_loss(model):
    rec = create_recipe("ema_self_distill", lam_max=0.6, ramp_start=2, ramp_end=5, inner="none",
                        temperature=1.0)
    lams = []
    for e in range(7):
        rec.set_epoch(e)
        lams.append(rec.weight())
    assert lams == pytest.approx([0, 0, 0, 0.2, 0.4, 0.6, 0.6])
    x, y = _batch()
    rec.set_epoch(0)
    assert rec.loss(model, x, y).total.item() == pytest.approx(_hand_ce(model(x), y).item(), rel=1e-6)
    rec.after_step(model)
    with torch.no_grad():  # move the student away from its EMA teacher
        model.net.fc.weight.add_(0.3)
    rec.set_epoch(4)
    s = model(x)
    with torch.no_grad():
        p_t = rec.teacher(x).double().softmax(1)
    hand = 0.6 * _hand_ce(s, y) + 0.4 * _hand_kl(p_t, s).mean()
    assert rec.loss(model, x, y).total.item() == pytest.approx(hand.item(), rel=1e-6)


def test_label_smoothing_with_trades_inner(model):
    x, y = _batch()
    alpha, beta = 0.1, 2.0
    rec = create_recipe("label_smoothing", alpha=alpha, inner="trades", beta=beta, eps=EPS,
                        step_size=EPS / 2, steps=1)
    torch.manual_seed(7)
    loss = rec.loss(model, x, y).total
    torch.manual_seed(7)
    x_adv = create_recipe("trades", eps=EPS, step_size=EPS / 2, steps=1).inner.attack(model, x, y)
    logits = model(x)
    smoothed = F.cross_entropy(logits.double(), y, label_smoothing=alpha)
    expected = smoothed + beta * _hand_kl(logits.softmax(1), model(x_adv)).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_kd_teacher_from_model_source_and_checkpoint(model, tmp_path):
    from rb_crossclass.models import save_safetensors

    import conftest

    teacher = wrap_model(tiny_convnet())
    with torch.no_grad():
        teacher.net.fc.weight.mul_(3.0)  # differs from the source's own initialisation
    ckpt = tmp_path / "teacher.safetensors"
    save_safetensors(teacher, ckpt)
    x, y = _batch()
    rec = create_recipe("kd", teacher=f"py:{conftest.__file__}:tiny_convnet", teacher_checkpoint=str(ckpt),
                        teacher_options={"img_size": 16}, lam=1.0, temperature=1.0, inner="none")
    from rb_crossclass.models import SourceOptions

    rec.prepare(SourceOptions(num_classes=10, in_chans=3, img_size=16, dataset=None))
    loss = rec.loss(model, x, y).total
    with torch.no_grad():
        p_t = teacher.eval()(x).double().softmax(1)
    assert loss.item() == pytest.approx(_hand_kl(p_t, model(x)).mean().item(), rel=1e-4)
    assert loss.item() > 1e-3  # without the checkpoint the teacher would equal the student (KL 0)
    assert rec.params()["teacher_checkpoint"] == str(ckpt)


# --------------------------------------------------------------------------- every registered recipe
MINIMAL_PARAMS = {
    "standard": {},
    "pgd_at": {"steps": 2},
    "trades": {"steps": 2},
    "label_smoothing": {"steps": 2},
    "kd": {"steps": 2, "teacher": "module"},
    "ema_self_distill": {"steps": 2, "lam_max": 0.5},
}


@pytest.mark.parametrize("name", available_recipes())
def test_every_registered_recipe_returns_a_loss_record_with_named_parts(name):
    """Like timm's test of every model: a new recipe must get an entry in MINIMAL_PARAMS."""
    assert name in MINIMAL_PARAMS, f"recipe {name!r} has no test parameters"
    params = dict(MINIMAL_PARAMS[name])
    if params.get("teacher") == "module":
        params["teacher"] = wrap_model(tiny_convnet())
    recipe = create_recipe(name, **params)
    model = wrap_model(tiny_convnet()).train()
    x, y = _batch()
    recipe.set_epoch(0)
    record = recipe.loss(model, x, y)
    assert record.parts and all(p.dim() == 0 for p in record.parts.values())
    assert torch.isclose(sum(record.parts.values()), record.total)
    assert math.isfinite(record.total.item()) and record.total.item() > 0
    record.total.backward()
    assert all(p.grad is not None for p in model.parameters())
    recipe.after_step(model)
    values = record.detached()
    assert set(values) == {"loss", *record.parts}
    import json

    json.dumps({**recipe.params(), **recipe.epoch_info()})  # recorded in metrics and cards
    again = create_recipe(name, **params)
    again.load_state_dict(recipe.state_dict())
    assert again.state_dict().keys() == recipe.state_dict().keys()


def test_trades_parts_are_ce_and_kl(model):
    x, y = _batch()
    record = create_recipe("trades", steps=1).loss(model, x, y)
    assert set(record.parts) == {"ce", "kl"}
    record = create_recipe("kd", teacher=wrap_model(tiny_convnet()), lam=0.5, steps=1).loss(model, x, y)
    assert set(record.parts) == {"ce", "kd"}
