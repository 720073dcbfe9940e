"""Model sources -> FeatureClassifier: timm families, robustbench offline, py:, checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from rb_crossclass.core.datasets import normalization
from rb_crossclass.data import load_dataset
from rb_crossclass.models import (
    CheckpointError,
    FeatureClassifier,
    ModelContractError,
    ModelSourceError,
    available_sources,
    create_model_source,
    read_state_dict,
    save_safetensors,
    wrap_model,
)

from conftest import CIFAR_TEST_NPZ, needs_shared, pyautoattack_checkpoint, tiny_convnet

PROBE = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def _check_invariant(model, x=PROBE):
    with torch.no_grad():
        logits, feats = model.forward_with_features(x)
        assert torch.allclose(model.head(model.features(x)), model(x), atol=1e-5)
        assert torch.allclose(logits, model.raw_forward(x), atol=1e-4)
    assert feats.shape == (x.shape[0], model.feature_dim)
    assert logits.shape == (x.shape[0], model.num_classes)


@pytest.mark.parametrize("name", ["resnet18", "convnext_atto", "efficientnet_b0",
                                  "vit_tiny_patch16_224"])
def test_timm_families(name):
    model = create_model_source(f"timm:{name}")
    _check_invariant(model)
    assert model.num_classes == 10 and isinstance(model.head, nn.Linear)


def test_timm_resnet_cifar_stem_and_normalization_inside():
    model = create_model_source("timm:resnet18")
    conv = model.net.conv1
    assert conv.kernel_size == (3, 3) and conv.stride == (1, 1)
    assert isinstance(model.net.maxpool, nn.Identity)
    mean, std = normalization("cifar10", 3)
    x = PROBE
    manual = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(model(x), model.net(manual), atol=1e-5)
    imagenet_stem = create_model_source("timm:resnet18", cifar_stem=False)
    assert imagenet_stem.net.conv1.stride == (2, 2)


def test_timm_vit_small_patches():
    model = create_model_source("timm:vit_tiny_patch16_224")
    assert model.net.patch_embed.patch_size == (4, 4)
    assert model.net.patch_embed.num_patches == 64


def test_unknown_timm_model_is_a_clear_error():
    with pytest.raises(ModelSourceError, match="timm has no model"):
        create_model_source("timm:not_a_real_net")
    with pytest.raises(ModelSourceError, match="must look like"):
        create_model_source("resnet18")


@needs_shared
def test_pyautoattack_resnet18_via_py_source_is_94_percent():
    model = create_model_source("py:pyautoattack.examples.resnet:ResNet18",
                                checkpoint=str(pyautoattack_checkpoint()))
    x, y = load_dataset(f"npz:{CIFAR_TEST_NPZ}", n_examples=500)
    with torch.no_grad():
        acc = torch.cat([model(x[i:i + 250]).argmax(1) for i in range(0, 500, 250)]).eq(y).float().mean()
    assert 0.93 <= acc.item() <= 0.96, acc  # 94.6% measured; the file is a standard ResNet-18
    assert model.extractor.head_name == "linear"
    _check_invariant(model, x[:4])


def _save_robustbench_checkpoint(tmp_path, name, threat="Linf"):
    from rb_crossclass.compat import import_robustbench

    import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    torch.manual_seed(0)
    net = model_dicts[BenchmarkDataset("cifar10")][ThreatModel(threat)][name]["model"]()
    path = tmp_path / "cifar10" / threat / f"{name}.pt"
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": net.state_dict()}, path)
    return net, path


def test_robustbench_zoo_model_offline_from_placed_checkpoint(tmp_path):
    net, _ = _save_robustbench_checkpoint(tmp_path, "Ding2020MMA")
    model = create_model_source("robustbench:Ding2020MMA", model_dir=str(tmp_path))
    _check_invariant(model)
    with torch.no_grad():
        assert torch.allclose(model(PROBE), net.eval()(PROBE), atol=1e-5)


def test_robustbench_html_saved_as_pt_is_refused(tmp_path):
    path = tmp_path / "cifar10" / "Linf" / "Ding2020MMA.pt"
    path.parent.mkdir(parents=True)
    path.write_text("<!DOCTYPE html><html><body>Google Drive quota exceeded</body></html>")
    with pytest.raises(CheckpointError, match=f"delete {path}"):
        create_model_source("robustbench:Ding2020MMA", model_dir=str(tmp_path))


def test_robustbench_missing_checkpoint_offline(tmp_path, monkeypatch):
    from rb_crossclass.compat import import_robustbench

    import_robustbench()
    import robustbench.utils

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(robustbench.utils, "download_gdrive_new", offline, raising=False)
    monkeypatch.setattr(robustbench.utils, "download_gdrive", offline, raising=False)
    with pytest.raises(ModelSourceError, match="could not be downloaded"):
        create_model_source("robustbench:Ding2020MMA", model_dir=str(tmp_path))
    with pytest.raises(ModelSourceError, match="no cifar10/Linf model"):
        create_model_source("robustbench:NoSuchModel", model_dir=str(tmp_path))


class NoHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 10, 3)

    def forward(self, x):
        return self.conv(x).mean((2, 3))


class AfterHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 10)

    def forward(self, x):
        return torch.tanh(self.fc(x.mean((2, 3))))


def test_models_without_a_linear_head_are_rejected():
    with pytest.raises(ModelContractError, match="no nn.Linear"):
        wrap_model(NoHead())
    from rb_crossclass.models import check_contract

    with pytest.raises(ModelContractError, match="changes the logits after that layer"):
        check_contract(wrap_model(AfterHead()), PROBE)


def test_py_source_from_file_and_checkpoint_roundtrip(tmp_path):
    spec = "py:tests/conftest.py:tiny_convnet"
    model = create_model_source(spec)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)
    path = tmp_path / "w.safetensors"
    sha = save_safetensors(model, path)
    assert len(sha) == 64
    again = create_model_source(spec, checkpoint=str(path))
    with torch.no_grad():
        assert torch.equal(model(PROBE), again(PROBE))
    # a DDP-style torch file of the bare network loads too
    torch.save({k.replace("net.", "module.", 1): v for k, v in model.state_dict().items()
                if k.startswith("net.")}, tmp_path / "ddp.pt")
    third = create_model_source(spec, checkpoint=str(tmp_path / "ddp.pt"))
    with torch.no_grad():
        assert torch.equal(model(PROBE), third(PROBE))


class _Evil:
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_checkpoints_never_unpickle_arbitrary_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "obj": _Evil()}, path)
    with pytest.raises(CheckpointError, match="weights_only"):
        read_state_dict(path)
    bad = tmp_path / "trunc.safetensors"
    bad.write_bytes(b"\x00\x01garbage")
    with pytest.raises(CheckpointError, match="safetensors"):
        read_state_dict(bad)
    model = wrap_model(tiny_convnet())
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "wrong.pt")
    with pytest.raises(CheckpointError, match="does not fit"):
        create_model_source("py:tests/conftest.py:tiny_convnet", checkpoint=str(tmp_path / "wrong.pt"))
    assert model is not None


def test_py_source_errors():
    with pytest.raises(ModelSourceError, match="cannot import module"):
        create_model_source("py:no_such_module_xyz:f")
    with pytest.raises(ModelSourceError, match="no callable"):
        create_model_source("py:torch.nn:not_there")


def test_hook_extractor_keeps_no_tensors_between_calls():
    import copy

    model = wrap_model(tiny_convnet())
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    model(x).sum().backward()
    assert model.extractor._captured == []  # no autograd graph kept alive
    clone = copy.deepcopy(model)  # EMA teachers deep-copy the student
    with torch.no_grad():
        assert torch.equal(clone(x), model(x))


# --------------------------------------------------------------------------- every registered source
def _zoo_case(tmp_path):
    import yaml

    from rb_crossclass.models.checkpoint import sha256_file

    net = wrap_model(tiny_convnet())
    folder = tmp_path / "zoo" / "cifar10" / "Linf"
    folder.mkdir(parents=True)
    save_safetensors(net, folder / "Tiny.safetensors")
    entry = {"name": "Tiny", "dataset": "cifar10", "threat_model": "Linf", "eps": "8/255",
             "architecture": f"py:{Path(__file__).parent / 'conftest.py'}:tiny_convnet",
             "checkpoint": {"path": "Tiny.safetensors", "sha256": sha256_file(folder / "Tiny.safetensors")},
             "card": "Tiny.json"}
    (folder / "Tiny.yaml").write_text(yaml.safe_dump(entry))
    return "zoo:Tiny", {}, {"RB_CROSSCLASS_ZOO": str(tmp_path / "zoo")}


def _robustbench_case(tmp_path):
    _save_robustbench_checkpoint(tmp_path, "Ding2020MMA")
    return "robustbench:Ding2020MMA", {"model_dir": str(tmp_path)}, {}


SOURCE_CASES = {
    "timm": lambda tmp_path: ("timm:resnet10t", {"extra": {"channels": [8, 8, 8, 8], "stem_width": 8}}, {}),
    "py": lambda tmp_path: (f"py:{Path(__file__).parent / 'conftest.py'}:tiny_convnet", {}, {}),
    "robustbench": _robustbench_case,
    "zoo": _zoo_case,
}


@pytest.mark.parametrize("prefix", available_sources())
def test_every_registered_source_ends_in_a_checked_feature_classifier(prefix, tmp_path, monkeypatch):
    """A new source must get a case in SOURCE_CASES."""
    assert prefix in SOURCE_CASES, f"model source {prefix!r} has no test case"
    spec, options, env = SOURCE_CASES[prefix](tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    model = create_model_source(spec, **options)
    assert isinstance(model, FeatureClassifier) and not model.training
    assert model.meta["source"] == spec and model.meta["randomized"] is False
    _check_invariant(model)
    assert model.num_classes == 10


# --------------------------------------------------------------------------- checkpoint downloads
def test_download_checkpoint_from_a_file_url_checks_its_sha256(tmp_path):
    """One download function for every checkpoint URL: written atomically, checked, reused."""
    import hashlib

    from rb_crossclass.models.checkpoint import ChecksumMismatchError, check_sha256, download_checkpoint

    source = tmp_path / "served" / "model.pt"
    source.parent.mkdir()
    source.write_bytes(b"weights" * 1000)
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    target = tmp_path / "downloads" / "model.pt"
    got = download_checkpoint(source.as_uri(), target, sha256=sha.upper())
    assert got == target and target.read_bytes() == source.read_bytes()
    assert [p.name for p in target.parent.iterdir()] == ["model.pt"]  # no temp file left
    source.unlink()
    assert download_checkpoint(source.as_uri(), target, sha256=sha) == target  # present: not fetched
    assert check_sha256(target, sha) == sha

    other = tmp_path / "other.pt"
    other.write_bytes(b"something else")
    with pytest.raises(ChecksumMismatchError) as err:
        download_checkpoint(other.as_uri(), tmp_path / "bad" / "other.pt", sha256=sha,
                            recorded_by="the manifest's")
    message = str(err.value)
    assert sha in message and hashlib.sha256(b"something else").hexdigest() in message
    assert "the manifest's" in message and "\n" not in message


def test_download_checkpoint_offline_is_one_line_naming_the_place(tmp_path, monkeypatch):
    import urllib.error

    import torch.hub

    from rb_crossclass.models.checkpoint import CheckpointError, download_checkpoint

    def offline(url, dst, progress=True):
        Path(dst).write_bytes(b"partial")
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    target = tmp_path / "d" / "model.pt"
    with pytest.raises(CheckpointError) as err:
        download_checkpoint("https://example.invalid/model.pt", target, place_hint=" or place it at X")
    message = str(err.value)
    assert "could not be downloaded" in message and str(target) in message and "offline?" in message
    assert "URLError" in message and "or place it at X" in message and "\n" not in message
    assert not target.exists() and list(target.parent.iterdir()) == []  # no partial file


def test_sweep_checksum_error_is_the_checkpoint_one():
    from rb_crossclass.models.checkpoint import ChecksumMismatchError
    from rb_crossclass.sweep import worker

    assert worker.CheckpointMismatch is ChecksumMismatchError


def test_source_options_from_dataset_facts_have_one_home():
    """SourceOptions.for_data is the one place dataset facts (K, C, H, the dataset's name) become
    model options: no other call of SourceOptions(...) in the package reads them from a DatasetInfo
    (``in_chans=info.shape[0]`` and the like)."""
    import ast
    from pathlib import Path

    from rb_crossclass.core import known_dataset
    from rb_crossclass.core.datasets import DatasetInfo
    from rb_crossclass.models import SourceOptions

    package = Path(SourceOptions.__module__.replace(".", "/")).parts[0]
    root = Path(__file__).resolve().parent.parent / package
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and ast.unparse(node.func).endswith("SourceOptions")
                    and any(k.arg == "in_chans" and ".shape" in ast.unparse(k.value) for k in node.keywords)):
                offenders.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    assert offenders == []
    cifar = known_dataset("cifar10")
    opts = SourceOptions.for_data(cifar, threat_model="L2", seed=3)
    assert (opts.num_classes, opts.in_chans, opts.img_size, opts.dataset) == (10, 3, 32, "cifar10")
    assert (opts.threat_model, opts.seed) == ("L2", 3)
    mnist = known_dataset("mnist")
    npz_file = DatasetInfo(**{**mnist.__dict__, "name": "npz:digits.npz"})
    opts = SourceOptions.for_data(npz_file, num_classes=12)
    assert (opts.num_classes, opts.in_chans, opts.img_size, opts.dataset) == (12, 1, 28, None)
    assert SourceOptions.for_data(mnist).dataset == "mnist"
