"""evaluate.attack_model: the faster model pyautoattack attacks gives bare pyautoattack's
per-point robust flags on real models (a published MNIST model, pyautoattack's batch-norm
ResNet-18), computes the same function, keeps pyautoattack's tensors NCHW, leaves the user's model
untouched; ``exact`` hands the model over as it is; cards record which was used."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from rb_crossclass.cards import validate_card
from rb_crossclass.evaluate import AutoAttackConfig, evaluate_model, result_card, run_autoattack
from rb_crossclass.evaluate.attack_model import AttackModel, attack_model
from rb_crossclass.models import create_model_source, wrap_model

from conftest import SHARED_ROOT, direct_pyautoattack, needs_shared, train_briefly

ROOT = Path(__file__).resolve().parents[1]
MNIST_ARCHS = ROOT / "leaderboards" / "manifests" / "mnist_archs.py"
MNIST_ADV = (SHARED_ROOT / "checkpoints" / "mnist" / "advertorch_mnist_lenet5_advtrained.pt"
             if SHARED_ROOT else None)


class BNNet(nn.Module):
    """conv-BN-ReLU twice, pooled, linear head: [B,3,H,W] -> [B,10]; running statistics set to
    non-trivial values so that folding changes the weights."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(16, 10)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))


def _bare(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: AutoAttackConfig) -> torch.Tensor:
    """Per-point robust flags of a plain pyautoattack run, as a user would write it."""
    return direct_pyautoattack(model, x, y, cfg)[2]


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------- the model itself
def test_same_function_nchw_gradients_and_model_untouched():
    model = wrap_model(BNNet()).eval()
    before = copy.deepcopy(model.state_dict())
    flags = [p.requires_grad for p in model.parameters()]
    x = torch.rand(150, 3, 16, 16)
    attacked, settings = attack_model(model, x, "cpu")
    assert isinstance(attacked, AttackModel)
    assert settings.fold_batch_norms == 2 and settings.frozen_parameters and settings.chunk == 64
    assert settings.channels_last == torch.backends.mkldnn.is_available()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in attacked.modules())
    assert not any(p.requires_grad for p in attacked.parameters())
    # the user's model: same weights, batch norms, gradient flags and memory format
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.is_contiguous() for p in model.parameters())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 2
    # same function up to float rounding, on a batch larger than one chunk (150 = 64 + 64 + 22)
    xr = x.clone().requires_grad_(True)
    out = attacked(xr)
    with torch.no_grad():
        want = model(x)
    assert out.shape == want.shape and out.is_contiguous()
    assert torch.allclose(out, want, rtol=1e-5, atol=1e-5)
    # the input gradient equals the model's and is contiguous NCHW (pyautoattack uses .view on it)
    out.sum().backward()
    xw = x.clone().requires_grad_(True)
    model(xw).sum().backward()
    assert xr.grad.is_contiguous() and not (xr.grad.stride() == xr.grad.contiguous(
        memory_format=torch.channels_last).stride())
    assert torch.allclose(xr.grad, xw.grad, rtol=1e-4, atol=1e-6)
    for p in model.parameters():
        p.grad = None


def test_chunks_change_no_row():
    """A forward split into chunks gives each row what an unsplit forward gives it."""
    model = wrap_model(BNNet()).eval()
    x = torch.rand(70, 3, 8, 8)
    attacked, _ = attack_model(model, x, "cpu")
    whole = AttackModel(attacked.inner, attacked.channels_last, None)
    with torch.no_grad():
        assert torch.allclose(attacked(x), whole(x), rtol=0, atol=1e-6)


def test_exact_is_the_model_itself():
    model = wrap_model(BNNet()).eval()
    attacked, settings = attack_model(model, torch.rand(4, 3, 8, 8), "cpu", exact=True)
    assert attacked is model
    assert settings.as_dict() == {"exact": True, "fold_batch_norms": 0, "channels_last": False,
                                  "chunk": None, "frozen_parameters": False}


def test_a_model_that_cannot_be_copied_is_attacked_as_it_is():
    class NoCopy(BNNet):
        def __deepcopy__(self, memo):
            raise TypeError("holds a handle that cannot be copied")

    model = NoCopy().eval()
    attacked, settings = attack_model(model, torch.rand(4, 3, 8, 8), "cpu")
    assert attacked.inner is model and settings.fold_batch_norms == 0
    assert not settings.channels_last and not settings.frozen_parameters


# --------------------------------------------------------------------------- bare pyautoattack's flags
@pytest.fixture(scope="module")
def trained_bn(cifar_train):
    """BNNet trained 2 epochs (a few seconds) on the 5,085 real CIFAR-10 training images: its batch
    norms hold learned running statistics; ~35 % clean accuracy, some points robust at 2/255."""
    return wrap_model(train_briefly(BNNet(), *cifar_train, epochs=2)).eval()


@needs_shared
def test_flags_equal_bare_pyautoattack_on_a_published_mnist_model(mnist_test, one_thread):
    """advertorch's PGD-trained LeNet5 (../shared/checkpoints) at ε = 0.3 on 16 real MNIST test
    points, the gradient attacks of the standard version (APGD-CE, APGD-T with 9 targets): flags
    equal bare pyautoattack's, and some points fall while others hold."""
    if MNIST_ADV is None or not MNIST_ADV.is_file():
        pytest.skip(f"the published MNIST checkpoint is not at {MNIST_ADV}")
    model = create_model_source(f"py:{MNIST_ARCHS}:advertorch_lenet5", checkpoint=str(MNIST_ADV),
                                dataset="mnist", in_chans=1, img_size=28).eval()
    x, y = mnist_test
    x, y = x[:16].contiguous(), y[:16]
    cfg = AutoAttackConfig(norm="Linf", eps=0.3, version="custom", attacks=("apgd-ce", "apgd-t"),
                           batch_size=8)
    fast = run_autoattack(model, x, y, cfg, progress=False)
    assert not fast.attack_model["exact"] and fast.attack_model["frozen_parameters"]
    bare = _bare(model, x, y, cfg)
    assert torch.equal(fast.robust_flags, bare)
    assert 0 < int(bare.sum()) < int(fast.clean_flags.sum())


@needs_shared
def test_flags_equal_bare_pyautoattack_on_a_batch_norm_network(trained_bn, cifar_test, one_thread):
    """A trained batch-norm CNN (both batch norms folded, channels_last) on 32 real CIFAR-10 test
    points at ε = 2/255, APGD-CE then APGD-T in batches of 16: flags equal bare pyautoattack's.
    (pyautoattack's ResNet-18 is compared in benchmarks/bench_autoattack_speed.py.)"""
    x, y = cifar_test
    x, y = x[:32].contiguous(), y[:32]
    cfg = AutoAttackConfig(norm="Linf", eps=2 / 255, version="custom", attacks=("apgd-ce", "apgd-t"),
                           batch_size=16)
    fast = run_autoattack(trained_bn, x, y, cfg, progress=False)
    assert fast.attack_model["fold_batch_norms"] == 2
    assert fast.attack_model["channels_last"] == torch.backends.mkldnn.is_available()
    bare = _bare(trained_bn, x, y, cfg)
    assert torch.equal(fast.robust_flags, bare)
    assert 0 < int(bare.sum()) < int(fast.clean_flags.sum())


# --------------------------------------------------------------------------- cards
def test_card_records_the_attack_model_and_the_schema_checks_it():
    torch.manual_seed(0)
    model = wrap_model(BNNet()).eval()
    x = torch.rand(8, 3, 8, 8)
    with torch.no_grad():
        y = model(x).argmax(1)
    cfg = AutoAttackConfig(eps=1 / 255, version="custom", attacks=("apgd-ce",), batch_size=4)
    for exact in (False, True):
        res = evaluate_model(model, x, y, cfg, class_names=[str(i) for i in range(10)], progress=False,
                             pgd=False, cas=False, aa_exact=exact, dataset="cifar10")
        card = result_card(res, name="bn net")
        block = card["evaluation"]["cost"]["autoattack_model"]
        assert block["exact"] is exact and block["fold_batch_norms"] == (0 if exact else 2)
        validate_card(card)
    bad = copy.deepcopy(card)
    bad["evaluation"]["cost"]["autoattack_model"]["chunk"] = 0
    with pytest.raises(Exception, match="chunk"):
        validate_card(bad)
    bad["evaluation"]["cost"]["autoattack_model"] = {"exact": "yes"}
    with pytest.raises(Exception, match="autoattack_model"):
        validate_card(bad)


def test_the_summary_says_which_model_autoattack_attacked():
    from rb_crossclass.evaluate.result import attack_model_words

    fast = {"exact": False, "fold_batch_norms": 20, "channels_last": True, "chunk": 64,
            "frozen_parameters": True}
    assert attack_model_words(fast) == (
        "AutoAttack attacked: a faster copy of the model (frozen parameters, 20 batch norms folded into "
        "convolutions, channels_last, forwards of at most 64 images; same function, other float rounding, "
        "so AutoAttack's examples and the CAS on them may differ slightly from --aa-exact's)")
    exact = {"exact": True, "fold_batch_norms": 0, "channels_last": False, "chunk": None,
             "frozen_parameters": False}
    assert attack_model_words(exact).endswith(
        "the model as it is (--aa-exact; bare pyautoattack's arithmetic)")
    assert attack_model_words({}) == "AutoAttack attacked: not recorded"
