"""Each ecosystem quirk of DESIGN.md, with a test that fails if it stops being handled."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from rb_crossclass import compat
from rb_crossclass.compat import CompatError


def test_bare_import_robustbench_works_in_installed_environment():
    # The wheel (and an editable install) carries the .pth start-up hook; without it robustbench
    # 1.1.1 cannot import.
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c",
         "import robustbench, rb_crossclass, autoattack, pyautoattack; "
         "from autoattack.state import EvaluationState; print(autoattack is pyautoattack)"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_robustbench_needs_the_alias_without_the_hook():
    # The quirk itself: without the start-up hook (-S skips .pth files; site-packages is then put
    # on the path by hand) there is no `autoattack` module, which robustbench 1.1.1 imports.
    import site

    paths = site.getsitepackages()
    code = (
        f"import sys; sys.path[:0] = {paths!r}; "
        "import importlib.util; print(importlib.util.find_spec('autoattack') is None)"
    )
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True", "an `autoattack` package is installed besides pyautoattack"


def test_import_robustbench_in_process():
    rb = compat.import_robustbench()
    import autoattack
    import pyautoattack

    assert autoattack.AutoAttack is pyautoattack.AutoAttack
    assert hasattr(rb.utils, "load_model")
    # the alias leaves pyautoattack's own identity alone (the import system would overwrite its
    # __spec__ with the alias's), so its package data stays reachable
    import importlib.resources

    import autoattack.state

    assert pyautoattack.__spec__.name == "pyautoattack"
    assert autoattack.state is pyautoattack.state  # one module, not a second copy of the file
    assert (importlib.resources.files("pyautoattack") / "examples" / "model_test.pt").is_file()


def test_setuptools_below_81_for_pkg_resources():
    from importlib.metadata import version

    major = int(version("setuptools").split(".")[0])
    assert major < 81
    compat.check_setuptools()


def test_robustbench_benchmark_keywords_rejected_but_make_autoattack_works():
    from pyautoattack import AutoAttack

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3)).eval()
    with pytest.raises(TypeError):
        AutoAttack(model, norm="Linf", eps=0.1, version="standard", device="cpu", log_path="x.log")
    adversary = compat.make_autoattack(model, norm="Linf", eps=0.1, version="custom",
                                       attacks=["apgd-ce"], seed=0)
    assert adversary.seed == 0 and adversary.attacks_to_run == ["apgd-ce"]
    x = torch.rand(4, 3, 2, 2, generator=torch.Generator().manual_seed(0))
    y = model(x).argmax(1)
    with pytest.raises(TypeError):  # robustbench passes bs=; pyautoattack calls it batch_size=
        adversary.run_standard_evaluation(x, y, bs=4)
    x_adv, _ = adversary.run_standard_evaluation(x, y, batch_size=4)  # returns (x_adv, y_adv)
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6
    with pytest.raises(ValueError):
        compat.make_autoattack(model, norm="Linf", eps=0.1, attacks=["apgd-ce"])  # needs custom


def test_pyautoattack_state_resume_flag_matches_reality(tmp_path):
    # If pyautoattack fixes state reloading this fails, telling us to revisit our own resume.
    assert compat.PYAUTOATTACK_STATE_RESUME_BROKEN == (
        not compat.pyautoattack_state_roundtrip_ok(tmp_path)
    )


def test_official_cards_dir_is_required(monkeypatch, tmp_path):
    monkeypatch.delenv(compat.OFFICIAL_CARDS_ENV, raising=False)
    assert not compat.robustbench_ships_model_info()
    with pytest.raises(CompatError, match="model_info"):
        compat.official_cards_dir()
    monkeypatch.setenv(compat.OFFICIAL_CARDS_ENV, str(tmp_path))
    assert compat.official_cards_dir() == tmp_path
    with pytest.raises(CompatError, match="not found"):
        compat.official_cards_dir(tmp_path / "missing")


def test_torch_pins():
    ok, desc = compat.torch_versions_ok()
    assert ok, desc


def test_robustbench_load_model_finds_timm_name():
    # The zoo hook: a timm model registered under compat.robustbench_timm_name is what
    # robustbench.utils.load_model returns (it passes pretrained=True and checkpoint_path).
    compat.import_robustbench()
    import timm
    from robustbench.utils import load_model
    from timm.models import register_model

    name = compat.robustbench_timm_name("RbCc-CompatProbe", "cifar10", "Linf")
    assert name == "rbcc_compatprobe_cifar10_linf"
    seen = {}

    def factory(pretrained=False, num_classes=10, checkpoint_path="", **kwargs):
        seen.update(pretrained=pretrained, num_classes=num_classes)
        return torch.nn.Linear(3, num_classes)

    factory.__name__ = name
    if not timm.is_model(name):
        register_model(factory)
    model = load_model("RbCc-CompatProbe", dataset="cifar10", threat_model="Linf")
    assert isinstance(model, torch.nn.Linear) and not model.training
    assert seen == {"pretrained": True, "num_classes": 10}


def test_package_versions_lists_core_packages():
    from rb_crossclass.core.provenance import package_versions

    v = package_versions()
    assert {"torch", "robustbench", "pyautoattack", "timm"} <= set(v)


def test_no_pretrained_weights_builds_random_weights_without_downloading(monkeypatch):
    import socket

    import timm
    import torchvision

    def no_network(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    original = timm.create_model
    with compat.no_pretrained_weights() as changed:
        net = timm.create_model("resnet18", pretrained=True, num_classes=3)
        tv = torchvision.models.resnet18(weights="DEFAULT")
        tv_legacy = torchvision.models.resnet18(pretrained=True)
    assert net.get_classifier().out_features == 3 and tv.fc.out_features == tv_legacy.fc.out_features == 1000
    assert changed == ["timm.create_model('resnet18', pretrained=True)",
                       "torchvision.models.resnet18(weights)", "torchvision.models.resnet18(weights)"]
    assert timm.create_model is original  # restored


def test_cuda_calls_are_noops_only_without_cuda():
    t = torch.zeros(2)
    with compat.cuda_calls_are_noops():
        if not torch.cuda.is_available():
            assert t.cuda() is t
    if not torch.cuda.is_available():
        with pytest.raises((AssertionError, RuntimeError)):
            t.cuda()


def test_zoo_entries_only_timm_builds_and_mixing_classes():
    from rb_crossclass.models.sources.robustbench import architecture_builder, zoo_entry

    compat.import_robustbench()
    build, how = architecture_builder("Debenedetti2022Light_XCiT-S12", "cifar10", "Linf")
    assert how == "timm:debenedetti2022light_xcit_s12_cifar10_linf"
    with pytest.raises(RuntimeError, match="Unknown model"):  # the zoo's callable as written
        zoo_entry("Debenedetti2022Light_XCiT-S12", "cifar10", "Linf")["model"]()
    assert architecture_builder("Wong2020Fast", "cifar10", "Linf")[1] == "zoo callable"
    from robustbench.model_zoo.architectures import comp_model, mixing_net

    defined = {c for c in compat.ROBUSTBENCH_MIXING_CLASSES
               if hasattr(comp_model, c) or hasattr(mixing_net, c)}
    assert defined == compat.ROBUSTBENCH_MIXING_CLASSES


def test_timm_import_warning_silenced_only_for_our_imports():
    # The quirk is real (a plain `import timm` warns; if timm fixes it this fails: drop import_timm)
    # and import_timm hides exactly that warning.
    plain = subprocess.run([sys.executable, "-W", "default", "-c", "import timm"],
                           capture_output=True, text=True, timeout=120)
    assert "torch.jit.interface" in plain.stderr
    ours = subprocess.run([sys.executable, "-W", "default", "-c",
                           "from rb_crossclass.compat import import_timm; import_timm()"],
                          capture_output=True, text=True, timeout=120)
    assert ours.returncode == 0 and "torch.jit.interface" not in ours.stderr, ours.stderr
