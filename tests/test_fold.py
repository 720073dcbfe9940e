"""Batch norms folded into convolutions (models/fold.py): which pairs fold, the folded copy computes
the model's function, refusals fall back to the model, and the scorer uses it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rb_crossclass.attacks import PGDConfig
from rb_crossclass.models import wrap_model
from rb_crossclass.models.fold import conv_bn_pairs, fold_batch_norms
from rb_crossclass.scoring import score_examples, score_model


class Block(nn.Module):
    """conv-bn-relu, a residual conv-bn, and the cases that must not fold."""

    def __init__(self, mode: str = "plain") -> None:
        super().__init__()
        self.mode = mode
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        c = self.conv2(h)
        if self.mode == "reused":  # the conv output also feeds the residual sum
            h = self.bn2(c) + c
        elif self.mode == "inplace":  # changed in place between conv and bn
            h = self.bn2(c.mul_(2.0))
        else:
            h = self.bn2(c) + h
        return self.head(h.mean((2, 3)))


def make(mode: str = "plain") -> nn.Module:
    torch.manual_seed(0)
    net = Block(mode)
    with torch.no_grad():  # non-trivial running statistics and affine parameters
        for bn in (net.bn1, net.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    return wrap_model(net).eval()


@pytest.fixture
def probe():
    return torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def test_folds_every_conv_bn_pair_and_keeps_the_function(probe):
    model = make()
    assert conv_bn_pairs(model, probe) == [("net.conv1", "net.bn1"), ("net.conv2", "net.bn2")]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded, n = fold_batch_norms(model, probe)
    assert n == 2 and folded is not model
    assert isinstance(folded.net.bn1, nn.Identity) and isinstance(model.net.bn1, nn.BatchNorm2d)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # model untouched
    x = torch.rand(5, 3, 8, 8, generator=torch.Generator().manual_seed(1))  # not the probe
    with torch.no_grad():
        for a, b in zip(folded.forward_with_features(x), model.forward_with_features(x), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert folded.head.weight is not model.head.weight and torch.equal(folded.head.weight, model.head.weight)


@pytest.mark.parametrize("mode", ["reused", "inplace"])
def test_refuses_what_is_not_a_plain_pair(probe, mode, caplog):
    model = make(mode)
    folded, n = fold_batch_norms(model, probe)
    if mode == "reused":  # found by the pairing rule, refused by the check on the probe
        assert ("net.conv2", "net.bn2") in conv_bn_pairs(model, probe)
        assert "outputs differ" in caplog.text
    assert n == 0 and folded is model


def test_subclasses_and_batch_statistics_are_left_alone(probe):
    class StdConv(nn.Conv2d):  # e.g. weight standardization: not a plain convolution
        pass

    model = make()
    model.net.conv1.__class__ = StdConv
    model.net.bn2.track_running_stats = False
    model.net.bn2.running_mean = model.net.bn2.running_var = None
    assert conv_bn_pairs(model, probe) == []
    assert fold_batch_norms(model, probe) == (model, 0)


def test_scorer_folds_by_default_and_matches_unfolded_scores():
    model = make()
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(24, 3, 8, 8, generator=g), torch.arange(4).repeat(6)
    folded = score_model(model, x, y, attack=PGDConfig(eps=8 / 255, steps=2), progress=False,
                         keep_adversarial=True)
    assert folded.compute["fold_batch_norms"] == 2 and isinstance(model.net.bn1, nn.BatchNorm2d)
    plain = score_examples(model, x, folded.x_adv, y, progress=False, fold_bn=False)
    assert plain.compute["fold_batch_norms"] == 0
    assert plain.cas == pytest.approx(folded.cas, abs=1e-5)
    assert plain.clean_cas == pytest.approx(folded.clean_cas, abs=1e-5)
    assert plain.robust_accuracy == folded.robust_accuracy
