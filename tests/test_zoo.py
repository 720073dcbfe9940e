"""Model zoo: YAML entries, the zoo: source, RobustBench's load_model offline, checksums."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch
import yaml
from test_leaderboard import measured_card

from rb_crossclass import zoo
from rb_crossclass.models import create_model_source, save_safetensors
from rb_crossclass.models.feature_classifier import FeatureClassifier

from conftest import CIFAR_TEST_NPZ

NAME = "Tiny2025Zoo-R10t"  # the hyphen exercises RobustBench's '-' -> '_' rule
ARCH = "timm:resnet10t"
EXTRA = {"channels": [8, 16, 32, 64], "stem_width": 8}
REPO_ZOO = Path(__file__).resolve().parent.parent / "model_zoo"


def tiny_model() -> FeatureClassifier:
    # the weights come from the source seed (the global RNG no longer reaches model construction)
    return create_model_source(ARCH, extra=dict(EXTRA), cifar_stem=False, seed=123)


def write_entry(root: Path, model: FeatureClassifier, model_id: str = NAME, **changes) -> Path:
    name = model_id
    folder = root / "cifar10" / "Linf"
    folder.mkdir(parents=True, exist_ok=True)
    sha = save_safetensors(model, folder / f"{name}.safetensors")
    (folder / f"{name}.json").write_text(json.dumps(measured_card(name, "12.00", cas=7.5)))
    entry = {
        "name": name, "dataset": "cifar10", "threat_model": "Linf", "eps": "8/255",
        "architecture": ARCH,
        "model": {"cifar_stem": False, "extra": EXTRA, "num_classes": 10, "input_shape": [3, 32, 32]},
        "recipe": {"name": "pgd_at", "params": {"eps": "8/255", "steps": 5}},
        "checkpoint": {"path": f"{name}.safetensors", "url": None, "sha256": sha},
        "card": f"{name}.json",
    }
    entry.update(changes)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(entry, sort_keys=False))
    return path


@pytest.fixture
def zoo_dir(tmp_path) -> tuple[Path, FeatureClassifier]:
    model = tiny_model().eval()
    write_entry(tmp_path / "zoo", model)
    return tmp_path / "zoo", model


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def probe() -> torch.Tensor:
    return torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def same_outputs(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    with torch.no_grad():
        return torch.equal(a.eval()(probe()), b.eval()(probe()))


def test_list_and_find_entries(zoo_dir):
    root, _ = zoo_dir
    entries = zoo.list_entries(root)
    assert [e.name for e in entries] == [NAME]
    entry = zoo.find_entry(NAME, root, "cifar10", "Linf")
    assert entry.timm_name == "tiny2025zoo_r10t_cifar10_linf"
    assert entry.checkpoint_path == root / "cifar10" / "Linf" / f"{NAME}.safetensors"
    assert entry.recipe["name"] == "pgd_at"
    with pytest.raises(zoo.ZooError, match="no zoo entry 'Other'"):
        zoo.find_entry("Other", root)
    assert zoo.list_entries(root, dataset="cifar100") == []


def test_zoo_source_loads_the_checkpoint(zoo_dir, monkeypatch, offline):
    root, model = zoo_dir
    monkeypatch.setenv(zoo.ZOO_ENV, str(root))
    loaded = create_model_source(f"zoo:{NAME}")
    assert isinstance(loaded, FeatureClassifier) and not loaded.training
    assert same_outputs(loaded, model)
    assert loaded.meta["checkpoint_sha256"] == zoo.find_entry(NAME, root).sha256
    fresh = zoo.build_zoo_model(zoo.find_entry(NAME, root), pretrained=False)
    assert not same_outputs(fresh, model)  # the weights really come from the file


def test_robustbench_load_model_offline_and_tampering(zoo_dir, tmp_path, offline, monkeypatch):
    from rb_crossclass.compat import import_robustbench

    root, model = zoo_dir
    import_robustbench()
    from robustbench.utils import load_model

    names = zoo.register_timm(root)
    assert names == ["tiny2025zoo_r10t_cifar10_linf"]
    loaded = load_model(NAME, model_dir=str(tmp_path / "models"), dataset="cifar10", threat_model="Linf")
    assert isinstance(loaded, FeatureClassifier) and not loaded.training
    assert same_outputs(loaded, model)
    assert not (tmp_path / "models").exists()  # nothing was downloaded

    weights = root / "cifar10" / "Linf" / f"{NAME}.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0x01  # one flipped bit in the last tensor
    weights.write_bytes(bytes(data))
    with pytest.raises(zoo.ZooChecksumError, match="refusing to load"):
        load_model(NAME, model_dir=str(tmp_path / "models"), dataset="cifar10", threat_model="Linf")
    monkeypatch.setenv(zoo.ZOO_ENV, str(root))
    with pytest.raises(zoo.ZooChecksumError):
        create_model_source(f"zoo:{NAME}")


@pytest.mark.parametrize("change, message", [
    ({"name": "Else"}, "must agree"),
    ({"threat_model": "L2"}, "do not match its folder"),
    ({"checkpoint": {"path": "x.safetensors", "sha256": "abc"}}, "64 lower-case hex"),
    ({"checkpoint": {"sha256": "0" * 64}}, "needs a 'path' or a 'url'"),
    ({"architecture": "resnet18"}, "model source"),
    ({"card": None}, "'card' is missing"),
])
def test_malformed_entries_name_file_and_key(tmp_path, change, message):
    path = write_entry(tmp_path, tiny_model(), **change)
    with pytest.raises(zoo.ZooError, match=message) as info:
        zoo.load_entry(path)
    assert str(path) in str(info.value)


def test_missing_checkpoint_without_url(zoo_dir):
    root, _ = zoo_dir
    (root / "cifar10" / "Linf" / f"{NAME}.safetensors").unlink()
    with pytest.raises(zoo.ZooError, match="not found"):
        zoo.checkpoint_file(zoo.find_entry(NAME, root))


def test_cli_list_show_card(zoo_dir, capsys, tmp_path):
    from rb_crossclass.cli import main

    root, _ = zoo_dir
    assert main(["zoo", "--root", str(root), "list"]) == 0
    out = capsys.readouterr().out
    assert NAME in out and "7.50" in out and "1 entries" in out
    assert main(["zoo", "--root", str(root), "show", NAME]) == 0
    assert "sha256 ok" in capsys.readouterr().out
    assert main(["zoo", "--root", str(root), "card", NAME, "--out", str(tmp_path / "c.json")]) == 0
    assert json.loads((tmp_path / "c.json").read_text())["cross_class"]["cas"] == 7.5
    weights = root / "cifar10" / "Linf" / f"{NAME}.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    assert main(["zoo", "--root", str(root), "show", NAME]) == 1
    assert "refusing to load" in capsys.readouterr().err


def test_add_entry_and_attach_card(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints" / "best").mkdir(parents=True)  # add_entry takes the best checkpoint by default
    model = tiny_model()
    save_safetensors(model, run / "checkpoints" / "best" / "model.safetensors")
    config = {"name": "r", "model": {"source": ARCH, "cifar_stem": False, "extra": EXTRA},
              "recipe": {"name": "trades", "params": {"beta": 6.0}}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    (run / "summary.json").write_text(json.dumps({"epochs": 3, "best_epoch": 2, "seconds": 9.0}))
    entry = zoo.add_entry(run, "Added2025", root=tmp_path / "zoo")
    assert entry.architecture == ARCH and entry.recipe["name"] == "trades"
    assert same_outputs(zoo.build_zoo_model(entry), model)

    eval_card = tmp_path / "eval.json"
    card = measured_card("Added2025", "11.00", cas=3.0)
    eval_card.write_text(json.dumps(card))
    path = zoo.attach_card("Added2025", eval_card, root=tmp_path / "zoo", footnote="Trained on CPU.",
                           fields={"name": "Our title"})
    from rb_crossclass.cards import load_card

    written = load_card(path)
    assert written["footnote"] == "Trained on CPU." and written["name"] == "Our title"
    assert written["training"]["recipe"] == "trades" and written["training"]["epochs"] == 3
    assert written["training"]["checkpoint_sha256"] == entry.sha256
    assert written["cross_class"] == card["cross_class"]

    # a re-evaluation re-attached without options keeps the curated title and footnote
    card["autoattack_acc"], card["name"], card["footnote"], card["authors"] = "12.00", "Added2025", None, ""
    eval_card.write_text(json.dumps(card))
    written = load_card(zoo.attach_card("Added2025", eval_card, root=tmp_path / "zoo",
                                        fields={"authors": "Us"}))
    assert written["name"] == "Our title" and written["footnote"] == "Trained on CPU."
    assert written["authors"] == "Us"
    assert written["autoattack_acc"] == "12.00"


def test_attach_card_cli_says_what_it_did(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "checkpoints" / "best").mkdir(parents=True)
    save_safetensors(tiny_model(), run / "checkpoints" / "best" / "model.safetensors")
    (run / "config.yaml").write_text(yaml.safe_dump({"name": "r", "model": {"source": ARCH, "extra": EXTRA},
                                                     "recipe": {"name": "pgd_at", "params": {}}}))
    (run / "summary.json").write_text(json.dumps({"epochs": 1, "best_epoch": 1}))
    root = tmp_path / "zoo"
    from rb_crossclass.cli import main

    assert main(["zoo", "add", "--run", str(run), "--name", "Cli2025", "--root", str(root)]) == 0
    (tmp_path / "eval.json").write_text(json.dumps(measured_card("Cli2025", "11.00", cas=3.0)))
    capsys.readouterr()
    assert main(["zoo", "attach-card", "Cli2025", "--card", str(tmp_path / "eval.json"), "--root", str(root),
                 "--title", "T", "--footnote", "F"]) == 0
    out = capsys.readouterr().out
    assert "attached" in out and "AutoAttack 11.00 %" in out and "CAS 3.00" in out
    assert "training block" in out and "name (--title)" in out and "footnote" in out
    assert str(root / "cifar10" / "Linf" / "Cli2025.json") in out


# --------------------------------------------------------------------------- the committed zoo
REPO_ENTRIES = sorted(REPO_ZOO.glob("*/*/*.yaml")) if REPO_ZOO.is_dir() else []


@pytest.mark.skipif(not REPO_ENTRIES, reason="model_zoo/ holds no entries")
def test_repository_zoo_has_three_recipes():
    recipes = {zoo.load_entry(p).recipe.get("name") for p in REPO_ENTRIES}
    assert {"pgd_at", "trades"} <= recipes and recipes & {"label_smoothing", "kd", "ema_self_distill"}


@pytest.mark.slow
@pytest.mark.parametrize("path", REPO_ENTRIES, ids=[p.stem for p in REPO_ENTRIES])
def test_repository_zoo_entry(path):
    """Each committed entry: verified weights under 5 MB, a valid evaluated card whose clean
    accuracy on the first 500 CIFAR-10 test images is reproduced by loading the weights."""
    from rb_crossclass.cards import load_card

    entry = zoo.load_entry(path)
    weights = zoo.checkpoint_file(entry)
    assert weights.stat().st_size < 5 * 1024 * 1024
    card = load_card(entry.card_path)
    assert "5085 CIFAR-10" in card["footnote"] and "CPU" in card["footnote"]
    assert card["evaluation"]["n_examples"] == 500 and card["evaluation"]["autoattack_version"] == "standard"
    assert card["training"]["checkpoint_sha256"] == entry.sha256
    assert card["cross_class"]["cas"] >= 0
    if CIFAR_TEST_NPZ is None:
        pytest.skip("../shared/data is not present")
    from rb_crossclass.data import load_dataset

    x, y = load_dataset(f"npz:{CIFAR_TEST_NPZ}", "test", n_examples=500)
    model = zoo.build_zoo_model(entry)
    with torch.no_grad():
        correct = sum(int((model(x[i:i + 250]).argmax(1) == y[i:i + 250]).sum()) for i in range(0, 500, 250))
    assert f"{100 * correct / 500:.2f}" == card["clean_acc"]


def test_zoo_text_is_what_the_cli_prints(zoo_dir, capsys):
    from rb_crossclass.cli import main
    from rb_crossclass.core.formatting import text_table

    assert text_table(("a", "bb"), [("xyz", "1"), ("", "")]) == "a    bb\nxyz  1\n"  # trailing spaces go
    root, _ = zoo_dir
    rows = zoo.list_rows(root)
    table = zoo.list_table(rows, root)
    lines = table.splitlines()
    assert lines[0].split() == ["name", "dataset", "threat", "architecture", "recipe", "clean", "AA", "CAS",
                                "FSI", "n"]
    assert lines[1].startswith(NAME) and lines[0].index("clean") == lines[1].index(lines[1].split()[5])
    assert lines[-1] == f"1 entries in {zoo.zoo_root(root)}"
    assert main(["zoo", "--root", str(root), "list"]) == 0
    assert capsys.readouterr().out == table + "\n"
    entry = zoo.find_entry(NAME, root)
    shown = zoo.show_text(entry, verify=False)
    assert "checkpoint_verified" not in shown and "sha256 ok" in zoo.show_text(entry)
    assert any(line.split()[:2] == ["cas", "7.5"] for line in shown.splitlines())
    assert main(["zoo", "--root", str(root), "show", NAME, "--no-verify"]) == 0
    assert capsys.readouterr().out == shown + "\n"
