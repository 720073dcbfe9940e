"""Structural verdicts without weights (models/structure.py) and the reasons of ModelContractError."""

from __future__ import annotations

import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rb_crossclass.models import ModelContractError, check_contract, wrap_model
from rb_crossclass.models.feature_classifier import CONTRACT_REASONS
from rb_crossclass.models.structure import (
    count_parameters,
    inspect_structure,
    move_to_meta,
    not_applicable_reason,
    params_on_meta,
)

from conftest import TinyConvNet


class Ensemble(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = TinyConvNet(), TinyConvNet()

    def forward(self, x):
        return (self.a(x).softmax(1) + self.b(x).softmax(1)) / 2


class Scaled(TinyConvNet):
    def forward(self, x):
        return super().forward(x) * 2.0


class Noisy(TinyConvNet):
    def forward(self, x):
        return super().forward(x + 0.01 * torch.randn_like(x))


class ConvHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Conv2d(8, 10, 1)

    def forward(self, x):
        return self.fc(self.body(x)).flatten(1)


class UnusedLastLinear(TinyConvNet):
    def __init__(self):
        super().__init__()
        self.aux = nn.Linear(16, 10)  # registered last, never called


class RenormalizedHead(TinyConvNet):
    """Like Pang2020Boosting: the head's weight is re-normalized in place on every call (forwards
    then differ at the level of float rounding), no bias."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 10, bias=False)

    def forward(self, x):
        self.fc.weight.data = nn.functional.normalize(self.fc.weight, dim=1)
        return self.fc(nn.functional.normalize(self.body(x), dim=1))


class Reads(TinyConvNet):  # a forward that reads a value: cannot run on meta
    def forward(self, x):
        if float(x.mean()) > 2:
            return x
        return super().forward(x)


class LinearUsedEarlierTwice(nn.Module):
    """A projection Linear(16, 16) called twice on the features before the head, registered after
    the head: the last Linear registered is called (twice) but is not the head."""

    def __init__(self):
        super().__init__()
        self.body = TinyConvNet().body
        self.fc = nn.Linear(16, 10)
        self.proj = nn.Linear(16, 16)

    def forward(self, x):
        return self.fc(torch.relu(self.proj(torch.relu(self.proj(self.body(x))))))


class HeadInSequential(nn.Module):
    """The head is the middle item of a Sequential, an unused Linear registered after it, and the
    logits leave through a view (a new tensor object with the head's values)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(TinyConvNet().body, nn.Linear(16, 10), nn.Identity())
        self.spare = nn.Linear(10, 10)

    def forward(self, x):
        return self.net(x).view(x.shape[0], -1)


class LinearOnTokens(nn.Module):
    """The only Linear maps [B,T,C] tokens and the logits are their mean: no Linear's output is
    the logits (a real head_not_final)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(2).transpose(1, 2)).mean(1)


CASES = [
    (TinyConvNet, "ok"), (Ensemble, "ensemble"), (Scaled, "output_transform"), (Noisy, "randomized"),
    (ConvHead, "no_linear_head"), (UnusedLastLinear, "ok"), (RenormalizedHead, "ok"),
    (LinearUsedEarlierTwice, "ok"), (HeadInSequential, "ok"), (LinearOnTokens, "head_not_final"),
]
HEADS = {UnusedLastLinear: "fc", LinearUsedEarlierTwice: "fc", HeadInSequential: "net.1"}


IDS = [f"{c[0].__name__}-{c[1]}" for c in CASES]


@pytest.mark.parametrize("build, reason", CASES, ids=IDS)
def test_structure_on_meta_names_the_reason(build, reason):
    with params_on_meta():
        net = build()
    move_to_meta(net).eval()
    assert all(p.device.type == "meta" for p in net.parameters())
    report = inspect_structure(net, torch.empty(2, 3, 32, 32, device="meta"), 10)
    assert report.reason == reason, report.detail
    assert report.known and report.applicable == (reason == "ok")
    if build is TinyConvNet:
        assert (report.head, report.feature_dim) == ("fc", 16)
        assert (report.head_input, report.output) == ([2, 16], [2, 10])
    if build in HEADS:
        assert report.head == HEADS[build]
    if reason not in ("ok", "unknown"):
        assert "--head NAME" in report.detail and "`head:` key" in report.detail


@pytest.mark.parametrize("build, reason", CASES, ids=IDS)
def test_structure_agrees_with_the_contract_on_real_weights(build, reason):
    torch.manual_seed(0)
    net = build().eval()
    probe = torch.rand(2, 3, 32, 32)
    assert inspect_structure(net, probe, 10).reason == reason
    try:
        model = wrap_model(net)
        check_contract(model, probe)
        verdict = "randomized" if model.meta["randomized"] else "ok"
    except ModelContractError as err:
        verdict, detail = not_applicable_reason(net, err, probe, 10)
        assert detail.count("--head NAME") == 1, detail
    assert verdict == reason
    if build in HEADS:  # the head is found from the computation, not the registration order
        report = inspect_structure(net, probe, 10)
        assert model.extractor.head_name == report.head == HEADS[build]
        assert model.head is dict(net.named_modules())[HEADS[build]]
        # the logits are F.linear of that layer's input: independent of the extractor
        feats = model.features(probe)
        assert torch.allclose(net(probe), F.linear(feats, model.head.weight, model.head.bias), atol=1e-6)


def test_meta_forward_that_reads_values_is_unknown():
    with params_on_meta():
        net = Reads()
    report = inspect_structure(move_to_meta(net).eval(), torch.empty(2, 3, 32, 32, device="meta"), 10)
    assert report.reason == "unknown" and not report.known and "forward" in report.detail
    assert count_parameters(net) == count_parameters(TinyConvNet())


def test_contract_errors_carry_a_reason_that_survives_pickling():
    with pytest.raises(ModelContractError) as err:
        wrap_model(ConvHead())
    assert err.value.reason == "no_linear_head" and err.value.reason in CONTRACT_REASONS
    again = pickle.loads(pickle.dumps(err.value))
    assert again.reason == "no_linear_head" and str(again) == str(err.value)
    with pytest.raises(ModelContractError) as err:
        check_contract(wrap_model(Scaled().eval()), torch.rand(2, 3, 32, 32))
    assert err.value.reason == "output_transform"


def test_model_sources_keep_the_contract_reason(tmp_path):
    """create_model_source prefixes the source to a contract error; the reason must survive."""
    from rb_crossclass.models import SourceOptions, create_model_source

    module = tmp_path / "conv_head_models.py"
    module.write_text("from torch import nn\n\ndef conv_head():\n"
                      "    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1),\n"
                      "                         nn.Conv2d(8, 10, 1), nn.Flatten())\n")
    with pytest.raises(ModelContractError) as err:
        create_model_source(f"py:{module}:conv_head", SourceOptions(num_classes=10))
    assert err.value.reason == "no_linear_head" and str(err.value).startswith(f"py:{module}")
