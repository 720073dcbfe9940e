"""A zoo entry exported for a RobustBench pull request loads through robustbench.utils.load_model
from a model folder, with the entry registered in robustbench's model_dicts as the PR would."""

from __future__ import annotations

import ast
import dataclasses
import json

import pytest
import torch

from rb_crossclass import zoo
from rb_crossclass.cards import ROBUSTBENCH_KEYS, validate_card
from rb_crossclass.cli import main
from rb_crossclass.data import open_split

ENTRY = "RBCrossclass2025CPU_PGD-AT"


def test_exported_checkpoint_loads_through_robustbench_load_model(tmp_path, monkeypatch, capsys):
    from rb_crossclass.compat import import_robustbench

    import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel
    from robustbench.utils import load_model

    rb_id = "RbccExportTest2099_R10t"  # not registered with timm, so load_model takes its zoo path
    out = tmp_path / "pr"
    assert main(["card", "export-robustbench", ENTRY, "--out", str(out), "--id", rb_id,
                 "--venue", "rb-crossclass 2026", "--link", "https://example.org/paper"]) == 0
    printed = capsys.readouterr().out
    assert "max |logit diff| 0" in printed

    card = json.loads((out / "model_info" / "cifar10" / "Linf" / f"{rb_id}.json").read_text())
    assert list(card) == [k for k in ROBUSTBENCH_KEYS if k in card]  # RobustBench's keys, its order
    assert card["venue"] == "rb-crossclass 2026" and card["link"] == "https://example.org/paper"
    ours = zoo.read_entry_card(zoo.find_entry(ENTRY))
    assert card["reported"] == ours["autoattack_acc"] and card["clean_acc"] == ours["clean_acc"]
    validate_card(card, "exported")

    namespace = zoo.robustbench_export.load_entry_text((out / "model_zoo_entry.py").read_text())
    name, spec = namespace["ENTRY"]
    assert name == rb_id and spec["gdrive_id"] is None
    monkeypatch.setitem(model_dicts[BenchmarkDataset.cifar_10][ThreatModel.Linf], rb_id,
                        {**spec, "gdrive_id": "not-needed-the-file-is-in-model_dir"})
    model = load_model(rb_id, model_dir=str(out / "models"), dataset="cifar10", threat_model="Linf")
    reference = zoo.build_zoo_model(zoo.find_entry(ENTRY))
    x = open_split("sample:cifar10", "test", 16).x
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))


def test_export_refuses_what_robustbench_would_not_take(tmp_path, capsys):
    base = ["card", "export-robustbench", ENTRY, "--out", str(tmp_path / "o")]
    assert main(base) == 1  # the zoo card's venue has no year
    assert "'Venue Year'" in capsys.readouterr().err
    assert main([*base, "--venue", "ICML 2025"]) == 1  # and no link
    assert "pass --link" in capsys.readouterr().err
    assert main([*base, "--venue", "ICML"]) == 1
    assert "argument --venue" in capsys.readouterr().err
    assert not (tmp_path / "o" / "models").exists()


@pytest.mark.parametrize("bad", ["module.fc.weight", "net.model.fc.weight"])
def test_keys_robustbench_would_mangle_are_refused(bad):
    from rb_crossclass.zoo.robustbench_export import robustbench_state_dict

    class Fake(torch.nn.Module):
        def state_dict(self):
            return {bad: torch.zeros(1)}

    with pytest.raises(zoo.ExportError, match="module.' or 'model."):
        robustbench_state_dict(Fake())


# --------------------------------------------------------------------------- data never becomes code
HOSTILE = [
    '"""', "'''", "\\", "\\'", 'a"""b\'\'\'c', "line\nbreak", "carriage\rreturn", "crlf\r\n",
    '"); import os; os.system("touch PWNED")#', "'); import os; os.system('touch PWNED')#",
    '"""\nimport os\nos.system("touch PWNED")\n"""', "\u2028import os", "\u2029x", "\x85next",
    "nul\x00byte", "\x0c\x0bform", "\\N{BULLET}", "{}{0}%s", "\ud800", "😀 ünïcödé", "#", "\t" * 3,
]


def _skeleton(text: str, names: tuple[str, ...]) -> str:
    """The statements of generated text with every literal and the generated names blanked."""

    class Blank(ast.NodeTransformer):
        def visit_Constant(self, node):
            return ast.copy_location(ast.Constant(value=type(node.value).__name__), node)

    dumped = ast.dump(Blank().visit(ast.parse(text)))
    for name in names:
        dumped = dumped.replace(repr(name), "'<generated>'")
    return dumped


@pytest.fixture(scope="module")
def exported_parts():
    from rb_crossclass.zoo.authoring import read_entry_card

    entry = zoo.find_entry(ENTRY)
    return entry, zoo.build_zoo_model(entry), read_entry_card(entry)


@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_text_in_every_field_stays_data(exported_parts, hostile):
    from rb_crossclass.zoo.robustbench_export import _class_name, _py_name, entry_text

    entry, model, card = exported_parts
    extra = {**entry.extra, "benign": "benign", "k": ["benign", {"benign": 1}]}
    benign = entry_text(dataclasses.replace(entry, extra=extra), "Benign2025", model, card)
    names = ("Benign2025", _class_name("Benign2025"), _py_name("Benign2025"))
    bad_entry = dataclasses.replace(entry, name=hostile, dataset=hostile, threat_model=hostile,
                                    architecture=f"timm:resnet10t{hostile}",
                                    extra={**entry.extra, hostile: hostile, "k": [hostile, {hostile: 1}]})
    bad_card = {k: (hostile if isinstance(v, str) else v) for k, v in card.items()}
    text = entry_text(bad_entry, hostile, model, bad_card)
    tree = ast.parse(text)  # no SyntaxError, whatever the fields hold
    assert _skeleton(text, (hostile, _class_name(hostile), _py_name(hostile))) == _skeleton(benign, names)
    for line in text.splitlines():  # comments stay one printable-ASCII line each
        if line.lstrip().startswith("#"):
            assert all(" " <= c <= "~" for c in line), line
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    assert ast.get_docstring(cls, clean=False) == (f"{hostile}: timm resnet10t{hostile}, inputs in [0,1], "
                                                   "normalization inside.")
    entry_node = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "ENTRY")
    assert ast.literal_eval(entry_node.value.elts[0]) == hostile
    call = next(n for n in ast.walk(tree)
                if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "create_model")
    assert ast.literal_eval(call.args[0]) == f"resnet10t{hostile}"
    kwargs = ast.literal_eval(call.keywords[-1].value)
    assert kwargs[hostile] == hostile and kwargs["k"] == [hostile, {hostile: 1}]


def test_values_that_are_not_literals_are_refused():
    from rb_crossclass.zoo.robustbench_export import _literal

    class Sneaky:
        def __repr__(self):
            return "__import__('os').system('touch PWNED')"

    for value in (Sneaky(), float("nan"), {1, 2}, b"bytes"):
        with pytest.raises(zoo.ExportError, match="Python literal"):
            _literal(value)
    plain = {"a": [1, 2.5, None, True, "x\u2028"]}
    assert ast.literal_eval(_literal(plain)) == plain


@pytest.mark.parametrize("hostile", ['"""', '"""); import os; os.system("touch {marker}")#',
                                     '\\"""\nimport os; os.system("touch {marker}")\n#'])
def test_export_of_a_card_with_code_in_its_architecture_writes_it_as_text(tmp_path, capsys, hostile):
    """Recipe: a triple quote in the card's architecture crashed the export (SyntaxError) and a
    crafted one ran code during the export and stayed in model_zoo_entry.py."""
    import shutil

    src = zoo.find_entry(ENTRY)
    root = tmp_path / "zoo"
    folder = root / "cifar10" / "Linf"
    folder.mkdir(parents=True)
    for path in src.yaml_path.parent.glob(f"{ENTRY}.*"):
        shutil.copy(path, folder / path.name)
    marker = tmp_path / "PWNED"
    value = hostile.replace("{marker}", str(marker))
    card = json.loads((folder / f"{ENTRY}.json").read_text())
    card["architecture"] = value
    (folder / f"{ENTRY}.json").write_text(json.dumps(card))
    out = tmp_path / "pr"
    assert main(["card", "export-robustbench", ENTRY, "--root", str(root), "--out", str(out),
                 "--venue", "rb-crossclass 2026", "--link", "https://example.org/paper"]) == 0
    capsys.readouterr()
    assert not marker.exists()
    text = (out / "model_zoo_entry.py").read_text()
    cls = next(n for n in ast.parse(text).body if isinstance(n, ast.ClassDef))
    assert ast.get_docstring(cls, clean=False).startswith(f"{value}: timm resnet10t")
    assert not marker.exists()
