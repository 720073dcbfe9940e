"""Structural verdicts without weights (models/structure.py) and the reasons of ModelContractError."""

from __future__ import annotations

import pickle

import pytest
import torch
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


CASES = [
    (TinyConvNet, "ok"), (Ensemble, "ensemble"), (Scaled, "output_transform"), (Noisy, "randomized"),
    (ConvHead, "no_linear_head"), (UnusedLastLinear, "head_not_final"), (RenormalizedHead, "ok"),
]


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
        verdict = not_applicable_reason(net, err, probe, 10)[0]
    assert verdict == reason


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
