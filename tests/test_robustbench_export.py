"""A zoo entry exported for a RobustBench pull request loads through robustbench.utils.load_model
from a model folder, with the entry registered in robustbench's model_dicts as the PR would."""

from __future__ import annotations

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
