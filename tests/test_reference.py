"""The paper's algorithm (crossclass/reference.py) against the scorer's default path on a tiny model:
same CAS on the same adversarial examples, same ascent direction, the model left as it was."""

from __future__ import annotations

import math

import pytest
import torch

from rb_crossclass.attacks import PGDConfig, pgd
from rb_crossclass.crossclass import reference_cas, reference_pgd
from rb_crossclass.scoring import score_examples, score_model

EPS = 8 / 255


@pytest.fixture
def balanced():
    """Random images, 4 per class (10 classes) in shuffled order: x [40,3,32,32] in [0,1], y [40]."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(40, 3, 32, 32, generator=g)
    y = torch.arange(10).repeat(4)[torch.randperm(40, generator=g)]
    return x, y


def matrix_of(result) -> torch.Tensor:
    return torch.tensor([[math.nan if v is None else v for v in row] for row in result.matrix])


@pytest.mark.parametrize("channels_last", [None, False])  # None: the default rule (on for CPU conv nets)
def test_default_path_equals_reference_on_the_same_examples(tiny_model, balanced, channels_last):
    x, y = balanced
    ours = score_model(tiny_model, x, y, attack=PGDConfig(eps=EPS, steps=3), seed=2, progress=False,
                       channels_last=channels_last, keep_adversarial=True)
    assert ours.compute["channels_last"] is (channels_last is None)
    assert ours.compute["batch_size"] == 64 and not ours.compute["bf16"]
    ref = reference_cas(tiny_model, x, y, class_batch=4, x_adv=ours.x_adv)
    assert ref.n_used == 40 == ours.n_examples
    assert abs(ours.cas - ref.cas) <= 1e-5
    assert (matrix_of(ours) - ref.matrix).abs().max() <= 1e-5
    given = score_examples(tiny_model, x, ours.x_adv, y, progress=False, channels_last=channels_last)
    assert given.cas == pytest.approx(ours.cas, abs=1e-6)


def test_input_only_gradients_take_the_reference_step(tiny_model, balanced):
    """One step from x (no random start): the scorer's attack (input gradients of the summed loss)
    and the paper's (loss.backward() of the batch mean, parameter gradients filled) move every
    pixel alike. The batch is 32, a power of two, so the mean's 1/B scaling is exact."""
    x, y = balanced[0][:32], balanced[1][:32]
    config = PGDConfig(eps=EPS, steps=1, random_start=False)
    ours = pgd(tiny_model, x, y, config, return_features=False).x_adv
    for p in tiny_model.parameters():
        p.requires_grad_(True)
    ref = reference_pgd(tiny_model, x, y, eps=EPS, steps=1, step=config.step, random_start=False)
    assert torch.equal(ours, ref)
    assert not torch.equal(ours, x)


def test_reference_attacks_within_the_ball_and_restores_the_model(tiny_model, balanced):
    x, y = balanced
    tiny_model.train()
    for p in tiny_model.parameters():
        p.requires_grad_(False)
    first = next(tiny_model.parameters())
    first.requires_grad_(True)
    first.grad = torch.ones_like(first)
    ref = reference_cas(tiny_model, x, y, steps=2, class_batch=4, seed=0)
    again = reference_cas(tiny_model, x, y, steps=2, class_batch=4, seed=0)
    assert ref.cas == again.cas and 0 <= ref.cas <= 90
    assert tiny_model.training
    assert [p.requires_grad for p in tiny_model.parameters()][0] is True
    assert not any(p.requires_grad for p in list(tiny_model.parameters())[1:])
    assert torch.equal(first.grad, torch.ones_like(first))
    assert all(p.grad is None for p in list(tiny_model.parameters())[1:])
    x_adv = reference_pgd(tiny_model.eval(), x[:8], y[:8], eps=EPS, steps=2, step=EPS / 4,
                          generator=torch.Generator().manual_seed(0))
    assert (x_adv - x[:8]).abs().max() <= EPS + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1


def test_reference_drops_the_remainder_of_each_class(tiny_model, balanced):
    x, y = balanced
    keep = torch.cat([torch.nonzero(y == c).flatten()[: (3 if c == 0 else 4)] for c in range(10)])
    ref = reference_cas(tiny_model, x[keep], y[keep], class_batch=4, x_adv=x[keep])
    assert ref.n_used == 36  # class 0 has 3 < 4 points: dropped, as the paper's code does
    assert torch.isnan(ref.matrix[0]).all() and not torch.isnan(ref.matrix[1, 1:]).any()
    assert torch.equal(ref.vectors[0], torch.zeros_like(ref.vectors[0]))
