"""Inputs written by other people: the failure kinds reported publicly by users of AutoAttack,
RobustBench, timm and torchattacks (the handed cases in ../shared/cases and siblings of each kind),
and the security / data-loss holes found by attacking every command."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rb_crossclass.cli import main
from rb_crossclass.models import ModelContractError, create_model_source, logits_of, wrap_model

from conftest import OFFICIAL_CARDS, SHARED_ROOT, needs_shared

CASES = SHARED_ROOT / "cases" if SHARED_ROOT else None
needs_cases = pytest.mark.skipif(CASES is None or not CASES.is_dir(), reason="../shared/cases is not present")
needs_official = pytest.mark.skipif(OFFICIAL_CARDS is None or not OFFICIAL_CARDS.is_dir(),
                                    reason="../shared/robustbench/model_info is not present")
PROBE = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


class Tiny(nn.Module):
    def __init__(self, k: int = 10) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, k)

    def features(self, x):
        return F.adaptive_avg_pool2d(F.relu(self.conv(x)), 1).flatten(1)

    def forward(self, x):
        return self.fc(self.features(x))


# --------------------------------------------------------------------------- 1. classes vs attacks
@needs_cases
def test_few_classes_case_reconciles_attack_settings(tmp_path, capsys):
    code, out, err = _cli(capsys, "evaluate", "--no-progress", "--model",
                          f"py:{CASES / 'models.py'}:build_four_class", "--dataset",
                          f"npz:{CASES / 'four_class.npz'}", "--card-dataset", "four_class",
                          "--n-examples", "6", "--batch-size", "6", "--out", str(tmp_path))
    assert code == 0, err
    card = json.loads((tmp_path / "build_four_class.json").read_text())
    adjustments = card["evaluation"]["adjustments"]
    assert adjustments == {"apgd-t.n_target_classes": "9 -> 3", "fab-t.n_target_classes": "9 -> 3"}
    assert card["evaluation"]["attacks"] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert "apgd-t.n_target_classes 9 -> 3" in out


@pytest.mark.parametrize("k, dropped, capped", [
    (3, ["apgd-t"], {"fab-t.n_target_classes": "9 -> 2"}),
    (2, ["apgd-t"], {"fab-t.n_target_classes": "9 -> 1"}),
])
def test_standard_version_fits_small_class_counts(k, dropped, capped):
    from rb_crossclass.compat import make_autoattack
    from rb_crossclass.evaluate.autoattack import reconcile_with_classes

    adversary = make_autoattack(wrap_model(Tiny(k)), norm="Linf", eps=8 / 255)
    changes = reconcile_with_classes(adversary, k)
    for name in dropped:
        assert name not in adversary.attacks_to_run and changes[name].startswith("dropped")
    for key, value in capped.items():
        assert changes[key] == value
    assert adversary.fab.n_target_classes == k - 1


def test_plus_version_with_two_classes_drops_both_dlr_attacks():
    from rb_crossclass.compat import make_autoattack
    from rb_crossclass.evaluate import EvaluateError
    from rb_crossclass.evaluate.autoattack import reconcile_with_classes

    adversary = make_autoattack(wrap_model(Tiny(2)), norm="Linf", eps=8 / 255, version="plus")
    changes = reconcile_with_classes(adversary, 2)
    assert "apgd-dlr" in changes and "apgd-t" in changes
    assert adversary.attacks_to_run == ["apgd-ce", "fab", "square", "fab-t"]
    with pytest.raises(EvaluateError, match="at least 2"):
        reconcile_with_classes(adversary, 1)


# --------------------------------------------------------------------------- 2. model outputs
class TupleFeaturesFirst(Tiny):
    def forward(self, x):
        f = self.features(x)
        return f, self.fc(f)


class HFStyle(Tiny):
    class Out:
        def __init__(self, logits):
            self.logits = logits

    def forward(self, x):
        return self.Out(self.fc(self.features(x)))


@needs_cases
def test_dict_output_case_scores(tmp_path, capsys):
    code, out, err = _cli(capsys, "score", "--no-progress", "--model", f"py:{CASES / 'models.py'}:build_dict",
                          "--dataset", f"npz:{CASES / 'cifar10_first16.npz'}", "--dataset-name", "cifar10",
                          "--n-examples", "8", "--attack", "none", "--out", str(tmp_path))
    assert code == 0, err
    assert json.loads((tmp_path / "crossclass.json").read_text())["n_examples"] == 8


@pytest.mark.parametrize("cls", [TupleFeaturesFirst, HFStyle])
def test_other_output_types_pass_the_contract_with_the_right_logits(cls):
    net = cls()
    model = wrap_model(net, head_name="fc")
    from rb_crossclass.models import check_contract

    check_contract(model, PROBE)
    with torch.no_grad():
        assert torch.allclose(model(PROBE), net.fc(net.features(PROBE)), atol=1e-6)


def test_output_adapter_refuses_what_it_cannot_read():
    z = torch.zeros(2, 10)
    assert logits_of(z) is z and logits_of({"logits": z}) is z and logits_of((z, torch.zeros(2, 3)), 10) is z
    with pytest.raises(ModelContractError, match="cannot tell which"):
        logits_of((z, z.clone()), 10)
    with pytest.raises(ModelContractError, match="returns a str"):
        logits_of("nope", 10)
    with pytest.raises(ModelContractError, match="no 'logits'"):
        logits_of({"scores": z}, 10)


# --------------------------------------------------------------------------- 3. wrapped checkpoints
@needs_cases
@pytest.mark.parametrize("name", ["dataparallel.safetensors", "compiled.pt", "ddp_compiled_nested.pt"])
def test_wrapped_checkpoint_cases_load(name, tmp_path, capsys):
    code, out, err = _cli(capsys, "score", "--no-progress", "--model", f"py:{CASES / 'models.py'}:build_tiny",
                          "--checkpoint", str(CASES / "checkpoints" / name), "--dataset",
                          f"npz:{CASES / 'cifar10_first16.npz'}", "--dataset-name", "cifar10",
                          "--n-examples", "16", "--attack", "none", "--out", str(tmp_path))
    assert code == 0, err
    assert "clean 37.50%" in out  # the trained TinyCNN's accuracy on these 16 images, whatever the wrapper


WRAPPED = [("module._orig_mod.", "state_dict"), ("module.", "model_state_dict"),
           ("_orig_mod.module.module.", None)]


@pytest.mark.parametrize("prefix, nest", WRAPPED)
def test_any_wrapper_prefix_and_nesting_in_any_format(prefix, nest, tmp_path):
    from safetensors.torch import save_file

    net = Tiny()
    state = {prefix + k: v for k, v in net.state_dict().items()}
    torch.save({nest: state} if nest else state, tmp_path / "w.pt")
    save_file(state, tmp_path / "w.safetensors")
    for file in ("w.pt", "w.safetensors"):
        model = create_model_source(f"py:{__file__}:Tiny", checkpoint=str(tmp_path / file), img_size=16)
        loaded, saved = model.net.state_dict().values(), net.state_dict().values()
        assert all(torch.equal(a, b) for a, b in zip(loaded, saved, strict=True))


# --------------------------------------------------------------------------- 4. randomized models
class TestTimeDropout(Tiny):
    def forward(self, x):
        return self.fc(F.dropout(self.features(x), 0.5, training=True))


@needs_cases
def test_randomized_case_runs_with_rand_version_and_is_flagged(tmp_path, capsys):
    code, out, err = _cli(capsys, "evaluate", "--no-progress", "--model",
                          f"py:{CASES / 'models.py'}:build_randomized", "--dataset",
                          f"npz:{CASES / 'cifar10_first16.npz'}", "--dataset-name", "cifar10",
                          "--n-examples", "16", "--batch-size", "16", "--aa-version", "rand", "--no-cas",
                          "--out", str(tmp_path))
    assert code == 0, err
    card = json.loads((tmp_path / "build_randomized.json").read_text())
    assert card["evaluation"]["randomized"] is True and card["evaluation"]["autoattack_version"] == "rand"
    assert "randomized" in out


def test_randomness_is_named_not_misdiagnosed_and_standard_aa_warns():
    model = create_model_source(f"py:{__file__}:TestTimeDropout", img_size=16)
    assert model.meta["randomized"] is True  # built, flagged (the head algebra holds forward by forward)
    from rb_crossclass.evaluate import AutoAttackConfig, run_autoattack

    x = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 3])
    config = AutoAttackConfig(version="custom", attacks=("apgd-ce",), batch_size=4)
    outcome = run_autoattack(model, x, y, config, progress=False)
    assert any("randomized defense" in m for m in outcome.diagnostics)


# --------------------------------------------------------------------------- 5. AutoAttack's diagnostics
@needs_cases
def test_gradient_masking_case_is_flagged_unreliable(tmp_path, capsys):
    code, out, err = _cli(capsys, "evaluate", "--no-progress", "--model",
                          f"py:{CASES / 'models.py'}:build_quantized", "--dataset",
                          f"npz:{CASES / 'cifar10_first16.npz'}", "--dataset-name", "cifar10",
                          "--n-examples", "16", "--batch-size", "16", "--aa-version", "custom", "--attacks",
                          "apgd-ce", "square", "--out", str(tmp_path))
    assert code == 0, err
    card = json.loads((tmp_path / "build_quantized.json").read_text())
    assert card["unreliable"] is True
    assert any("Square Attack has decreased" in m for m in card["evaluation"]["diagnostics"])
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert saved["diagnostics"] == card["evaluation"]["diagnostics"] and "Square Attack" in out


# --------------------------------------------------------------------------- 6./7. boards
@needs_official
def test_corruptions_board_ranks_by_corruptions_acc(tmp_path):
    from rb_crossclass.leaderboard import build_leaderboard

    result = build_leaderboard([OFFICIAL_CARDS], "cifar10", "corruptions", tmp_path / "b")
    board = json.loads((tmp_path / "b" / "leaderboard.json").read_text())
    values = [e["board_acc"] for e in board["entries"]]
    assert result.n_entries == 23 and None not in values and values == sorted(values, reverse=True)
    assert board["accuracy_field"] == "corruptions_acc"
    assert "Corruptions (%)" in (tmp_path / "b" / "index.html").read_text()


def test_corruptions_3d_board_from_our_own_cards(tmp_path):
    from test_leaderboard import official_card

    from rb_crossclass.leaderboard import build_leaderboard

    folder = tmp_path / "cards" / "cifar10" / "corruptions_3d"
    folder.mkdir(parents=True)
    for name, acc in (("A", "60.00"), ("B", "70.00")):
        card = official_card(name, "0.00")
        del card["autoattack_acc"]
        card.update(eps=None, corruptions_acc_3d=acc, corruptions_acc="1.00")
        (folder / f"{name}.json").write_text(json.dumps(card))
    build_leaderboard([tmp_path / "cards"], "cifar10", "corruptions_3d", tmp_path / "b")
    board = json.loads((tmp_path / "b" / "leaderboard.json").read_text())
    assert [e["model_id"] for e in board["entries"]] == ["B", "A"]


@needs_official
def test_upstream_slip_is_a_warning_and_the_folder_decides(tmp_path, capsys):
    code, out, err = _cli(capsys, "leaderboard", "--cards", str(OFFICIAL_CARDS), "--dataset", "cifar100",
                          "--threat-model", "Linf", "--out", str(tmp_path / "b"))
    assert code == 0, err
    board = json.loads((tmp_path / "b" / "leaderboard.json").read_text())
    assert len(board["entries"]) == 38
    assert len(board["warnings"]) == 1 and "Hendrycks2019Using.json" in board["warnings"][0]
    assert "warning:" in out


def test_slips_of_measured_cards_are_errors_and_unrankable_official_cards_skipped(tmp_path):
    from test_leaderboard import measured_card, official_card

    from rb_crossclass.leaderboard import LeaderboardError, build_leaderboard

    folder = tmp_path / "cards" / "cifar100" / "Linf"
    folder.mkdir(parents=True)
    (folder / "Ok.json").write_text(json.dumps({**official_card("Ok", "30.00"), "dataset": "cifar100"}))
    no_field = {**official_card("NoAcc", "0"), "dataset": "cifar100"}
    del no_field["autoattack_acc"]
    no_field.update(corruptions_acc="50.00", eps=None)
    (folder / "NoAcc.json").write_text(json.dumps(no_field))
    result = build_leaderboard([tmp_path / "cards"], "cifar100", "Linf", tmp_path / "b")
    assert result.n_entries == 1 and any("NoAcc.json: skipped" in w for w in result.warnings)
    (folder / "Ours.json").write_text(json.dumps(measured_card("Ours", "20.00", cas=1.0)))  # says cifar10
    with pytest.raises(LeaderboardError, match="Ours.json: field 'dataset'"):
        build_leaderboard([tmp_path / "cards"], "cifar100", "Linf", tmp_path / "b")


# --------------------------------------------------------------------------- 8. resume with changed keys
@needs_shared
@pytest.mark.parametrize("schedule, extra", [("cosine", {}), ("multistep", {"optim.milestones": [3]})])
def test_resume_with_more_epochs_follows_the_new_schedule(tmp_path, schedule, extra):
    from test_train import TINY_MODELS, mnist_config

    from rb_crossclass.train import config_from_dict, train

    models = tmp_path / "m.py"
    models.write_text(TINY_MODELS)

    def cfg(epochs):
        return config_from_dict(mnist_config(models, **{"optim.schedule": schedule, "optim.epochs": epochs,
                                                        "data.n_train": 64, "data.n_eval": 16, **extra}))

    train(cfg(2), tmp_path / "run")
    train(cfg(4), tmp_path / "run", resume=True)
    train(cfg(4), tmp_path / "straight")
    lrs = [json.loads(r)["lr"] for r in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    ref = [json.loads(r)["lr"] for r in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert len(lrs) == 4 and 0.0 not in lrs
    assert lrs[2:] == pytest.approx(ref[2:])  # continued along the 4-epoch schedule
    if schedule == "cosine":
        assert lrs == pytest.approx([0.05, 0.025, 0.025, 0.0073223], rel=1e-4)


# --------------------------------------------------------------------------- checkpoint consistency
@needs_shared
@pytest.mark.parametrize("fail_on", ["last", "epoch_003"])
def test_a_crash_anywhere_in_the_final_save_resumes_to_the_same_files(tmp_path, monkeypatch, fail_on):
    from test_train import TINY_MODELS, mnist_config

    from rb_crossclass.train import checkpoints, config_from_dict, train

    models = tmp_path / "m.py"
    models.write_text(TINY_MODELS)
    cfg = config_from_dict(mnist_config(models, **{"optim.epochs": 3, "data.n_train": 64, "data.n_eval": 16,
                                                   "checkpoint.every": 3}))
    train(cfg, tmp_path / "straight")
    real = checkpoints.save_checkpoint
    state = {"crashed": False}

    def crashing(folder, model, meta, *args, **kwargs):
        if Path(folder).name == fail_on and meta.get("epoch") == 3 and not state["crashed"]:
            state["crashed"] = True
            raise KeyboardInterrupt("simulated crash")
        return real(folder, model, meta, *args, **kwargs)

    monkeypatch.setattr(checkpoints, "save_checkpoint", crashing)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "crashed")
    train(cfg, tmp_path / "crashed", resume=True)
    for sub in ("last", "best", "epoch_003"):
        a = (tmp_path / "straight" / "checkpoints" / sub / "model.safetensors").read_bytes()
        b = (tmp_path / "crashed" / "checkpoints" / sub / "model.safetensors").read_bytes()
        assert a == b, sub
    card_a = json.loads((tmp_path / "straight" / "card.json").read_text())
    card_b = json.loads((tmp_path / "crashed" / "card.json").read_text())
    assert card_a["training"]["checkpoint_sha256"] == card_b["training"]["checkpoint_sha256"]
    rows = (tmp_path / "crashed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2, 3]


# --------------------------------------------------------------------------- 9. the class count
def test_class_count_comes_from_the_name_not_the_labels_present(tmp_path):
    from rb_crossclass.data import dataset_info

    x = np.zeros((9, 32, 32, 3), np.uint8)
    np.savez(tmp_path / "partial.npz", x=x, y=np.arange(9))  # a first-N subset lacking class 9
    assert dataset_info(f"npz:{tmp_path / 'partial.npz'}", dataset_name="cifar10").num_classes == 10
    inferred = dataset_info(f"npz:{tmp_path / 'partial.npz'}")
    assert inferred.num_classes == 9 and inferred.num_classes_inferred


def test_model_and_data_class_counts_disagree_with_sources(tmp_path, capsys):
    np.savez(tmp_path / "four.npz", x=np.zeros((4, 16, 16, 3), np.uint8), y=np.arange(4),
             num_classes=np.array(4))
    code, _, err = _cli(capsys, "score", "--no-progress", "--model", f"py:{__file__}:Tiny", "--dataset",
                        f"npz:{tmp_path / 'four.npz'}", "--attack", "none", "--out", str(tmp_path / "o"))
    assert code == 1 and "the model has 10 classes (its head (10, 8))" in err
    assert "field 'num_classes'" in err
    np.savez(tmp_path / "nine.npz", x=np.zeros((9, 16, 16, 3), np.uint8), y=np.arange(9))
    code, out, err = _cli(capsys, "score", "--no-progress", "--model", f"py:{__file__}:Tiny", "--dataset",
                          f"npz:{tmp_path / 'nine.npz'}", "--attack", "none", "--out", str(tmp_path / "o2"))
    assert code == 0, err  # K inferred from the labels (9) yields to the model's head (10)
    assert json.loads((tmp_path / "o2" / "crossclass.json").read_text())["num_classes"] == 10


# --------------------------------------------------------------------------- 10. the head's algebra
class CosineLinear(nn.Linear):
    def forward(self, x):
        return F.linear(F.normalize(x, dim=1), F.normalize(self.weight, dim=1)) * 10


class CosineHead(Tiny):
    def __init__(self):
        super().__init__()
        self.fc = CosineLinear(8, 10)


class HookedHead(Tiny):
    def __init__(self):
        super().__init__()
        self.fc.register_forward_hook(lambda m, i, o: o * 2)


def test_linear_subclass_computing_something_else_is_refused():
    with pytest.raises(ModelContractError, match="CosineLinear.*subclass of nn.Linear"):
        create_model_source(f"py:{__file__}:CosineHead", img_size=16)


def test_hooked_linear_that_changes_its_output_is_refused():
    with pytest.raises(ModelContractError, match="changes the logits after that layer"):
        create_model_source(f"py:{__file__}:HookedHead", img_size=16)


# --------------------------------------------------------------------------- security and data loss
def test_no_pickle_is_ever_loaded_from_a_data_folder(tmp_path):
    import pickle

    from rb_crossclass.data import load_dataset

    sentinel = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(sentinel), "w"))

    (tmp_path / "batches.meta").write_bytes(pickle.dumps(Exploit()))
    np.savez(tmp_path / "data.npz", x=np.zeros((2, 32, 32, 3), np.uint8), y=np.array([0, 1]))
    load_dataset(f"npz:{tmp_path / 'data.npz'}")
    from rb_crossclass.data import dataset_info

    dataset_info(f"npz:{tmp_path / 'data.npz'}")
    assert not sentinel.exists()


def test_a_huge_declared_class_count_is_refused_before_allocating(tmp_path):
    from rb_crossclass.data import DatasetError, dataset_info

    np.savez(tmp_path / "d.npz", x=np.zeros((2, 8, 8), np.uint8), y=np.array([0, 1]),
             num_classes=np.array(10**9))
    with pytest.raises(DatasetError, match="num_classes"):
        dataset_info(f"npz:{tmp_path / 'd.npz'}")


def test_sanitizer_is_linear_and_bounded_fields_keep_boards_fast(tmp_path):
    from test_leaderboard import official_card

    from rb_crossclass.leaderboard import build_leaderboard
    from rb_crossclass.leaderboard.sanitize import sanitize_html

    hostile = '<a href="http://x.org">' * 50_000 + "<b>" * 50_000 + "x" * 500_000
    t0 = time.perf_counter()
    sanitize_html(hostile)
    assert time.perf_counter() - t0 < 2.0
    folder = tmp_path / "cards"
    folder.mkdir()
    for i in range(20):
        card = official_card(f"M{i}", "40.00", footnote="<i>y</i>" * 2400)
        (folder / f"M{i}.json").write_text(json.dumps(card))
    t0 = time.perf_counter()
    build_leaderboard([folder], "cifar10", "Linf", tmp_path / "b")
    assert time.perf_counter() - t0 < 10.0


def test_board_rebuilds_never_delete_foreign_files(tmp_path):
    from test_leaderboard import official_card

    from rb_crossclass.leaderboard import LeaderboardError, build_leaderboard

    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "A.json").write_text(json.dumps(official_card("A", "40.00")))
    out = tmp_path / "board"
    build_leaderboard([cards], "cifar10", "Linf", out)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(LeaderboardError, match="notes.txt"):
        build_leaderboard([cards], "cifar10", "Linf", out)
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    old = tmp_path / "board.old"
    old.mkdir()
    (old / "precious.txt").write_text("mine")
    from rb_crossclass.core.io import OutputFolderError

    with pytest.raises(OutputFolderError, match="board.old"):
        build_leaderboard([cards], "cifar10", "Linf", out)
    assert (old / "precious.txt").read_text() == "mine" and (out / "leaderboard.json").is_file()
    with pytest.raises(LeaderboardError, match="holds the cards folder"):
        build_leaderboard([cards], "cifar10", "Linf", cards)
    assert (cards / "A.json").is_file()


def test_zoo_add_writes_nothing_outside_the_zoo(tmp_path):
    from rb_crossclass import zoo
    from rb_crossclass.core.names import ModelIdError

    for name in ("../../x", "..", "", "a/b"):
        with pytest.raises(ModelIdError):
            zoo.add_entry(tmp_path / "run", name, root=tmp_path / "zoo")
    assert not (tmp_path / "zoo").exists() and not (tmp_path / "x.yaml").exists()


# --------------------------------------------------------------------------- fuzzed cards
# Shapes a JSON value cannot hold in Python without building it (deep nesting, numbers past the
# int/float limits): a placeholder string in the card, expanded in the file's text.
_EXPANDED = {
    "@DEEP40": "[" * 40 + "]" * 40, "@DEEP990": "[" * 990 + "]" * 990,
    "@DEEP5000": "[" * 5000 + "]" * 5000, "@OBJ990": '{"a": ' * 990 + "1" + "}" * 990,
    "@INT4000": "1" + "0" * 3999, "@NEGINT4000": "-" + "9" * 4000, "@INT5000": "1" + "0" * 4999,
    "@FLOAT400": "1e400", "@TINY": "1e-400",
}


def _packed_bomb() -> dict:
    import base64
    import zlib

    return {"encoding": "float32-zlib-base64", "layout": "upper", "k": 1000,
            "data": base64.b64encode(zlib.compress(b"\0" * 40_000_000)).decode()}


def _mutations(card: dict, rng: np.random.Generator) -> dict:
    values = [None, True, -1, 0, 1e308, 10**40, "x" * 3000, "", [], {}, [[1.0] * 3] * 3, "8|255", "1e999",
              "<script>alert(1)</script>", "\u202e", 3.5, "NaN", {"nested": [1, {"a": None}]},
              # nesting, bombs (wide, long, packed) and huge numbers
              *_EXPANDED, 1.7976931348623157e308, -1e308, 5e-324, 10**300, [0.5] * 100_000,
              {f"k{i}": i for i in range(5000)}, "y" * 2_000_000, _packed_bomb(), [[1.0] * 300] * 300,
              [{"i": 10**200, "cosine": 10**100}]]
    mutated = json.loads(json.dumps(card))
    for _ in range(int(rng.integers(1, 4))):
        targets, level = [mutated], [mutated]  # the card's objects down to 4 levels (blocks, per_class, ...)
        for _depth in range(3):
            level = [v for t in level for v in (t.values() if isinstance(t, dict) else t[:3])
                     if isinstance(v, (dict, list))]
            targets += [t for t in level if isinstance(t, dict)]
        target = targets[int(rng.integers(len(targets)))]
        keys = list(target)
        pick = keys and rng.random() < 0.8
        key = keys[int(rng.integers(len(keys)))] if pick else f"k{int(rng.integers(9))}"
        if rng.random() < 0.15:
            target.pop(key, None)
        else:
            target[key] = values[int(rng.integers(len(values)))]
    return mutated


def _card_text(card: dict) -> str:
    text = json.dumps(card)
    for marker, expanded in _EXPANDED.items():
        text = text.replace(json.dumps(marker), expanded)
    return text


def test_fuzzed_cards_end_in_clear_errors_or_valid_boards(tmp_path, capsys):
    from test_leaderboard import measured_card, official_card

    from rb_crossclass.cards import CardError, card_problems, read_card_json
    from rb_crossclass.leaderboard import LeaderboardError, build_leaderboard

    rng = np.random.default_rng(7)
    bases = [official_card("O", "50.00", footnote="f"), measured_card("M", "40.00", cas=3.0), _rich_card()]
    slow = []
    for i in range(300):
        card = _mutations(bases[i % 3], rng)
        folder = tmp_path / f"c{i}"
        folder.mkdir()
        path = folder / f"X{i}.json"
        path.write_text(_card_text(card))
        try:
            card_problems(read_card_json(path))  # never raises but CardError (unreadable JSON)
        except CardError:
            pass
        t0 = time.perf_counter()
        try:
            build_leaderboard([folder], "cifar10", "Linf", tmp_path / f"b{i}")
        except (CardError, LeaderboardError):
            pass
        if time.perf_counter() - t0 > 3:
            slow.append(i)
        if i % 25 == 0:  # and the command line: one line, exit 0 or 1, never a traceback
            code, _, err = _cli(capsys, "card", "validate", str(folder))
            assert code in (0, 1) and "Traceback" not in err
            code, _, err = _cli(capsys, "leaderboard", "--cards", str(folder),
                                "--out", str(tmp_path / f"l{i}"))
            assert code in (0, 1) and (code == 0 or err.count("\n") == 1), err
    assert not slow


# --------------------------------------------------------------------------- round 3, 3. seeds
def test_same_seed_gives_the_same_untrained_timm_model_and_cas(tmp_path, capsys):
    """`--seed 0` twice on an untrained timm model: the same network, so the same CAS, whatever the
    global RNG did in between; another seed is another network."""
    cas = []
    for i, seed in enumerate(("0", "0", "1")):
        torch.rand(97)  # whatever ran before must not matter
        out = tmp_path / f"run{i}"
        code, _, err = _cli(capsys, "score", "--no-progress", "--model", "timm:resnet10t", "--dataset",
                            "sample:cifar10", "--n-examples", "6", "--steps", "1", "--seed", seed,
                            "--out", str(out))
        assert code == 0, err
        cas.append(json.loads((out / "crossclass.json").read_text())["cas"])
    assert cas[0] == cas[1] and cas[0] != cas[2]


UNSEEDED_PY = """
from torch import nn

def build(num_classes=10):
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, num_classes))
"""


@pytest.mark.parametrize("kind", ["timm", "py"])
def test_model_construction_is_seeded_and_leaves_the_global_rng_alone(kind, tmp_path):
    """Any source initialising weights draws them from ``SourceOptions.seed`` under a private RNG:
    equal state dicts for one seed, different for another, and the caller's RNG stream untouched."""
    spec = "timm:resnet10t"
    if kind == "py":
        (tmp_path / "unseeded.py").write_text(UNSEEDED_PY)
        spec = f"py:{tmp_path / 'unseeded.py'}:build"

    def weights(seed: int) -> list[torch.Tensor]:
        return [t.clone() for t in create_model_source(spec, seed=seed, check=False).state_dict().values()]

    torch.manual_seed(123)
    a = weights(0)
    after = torch.rand(3)
    torch.manual_seed(123)
    torch.rand(50)
    b = weights(0)
    c = weights(1)
    torch.manual_seed(123)
    assert torch.equal(torch.rand(3), after)  # building a model consumed nothing from the global RNG
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert not all(torch.equal(u, v) for u, v in zip(a, c, strict=True))


# --------------------------------------------------------------------------- round 3, 8. outputs first
MARKER_MODEL = """
from pathlib import Path
from torch import nn

def build(num_classes=10):
    Path({marker!r}).write_text("built")
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, num_classes))
"""


def _marker_source(tmp_path: Path) -> tuple[str, Path]:
    marker = tmp_path / "model_was_built"
    (tmp_path / "marker_model.py").write_text(MARKER_MODEL.format(marker=str(marker)))
    return f"py:{tmp_path / 'marker_model.py'}:build", marker


def _command(kind: str, source: str, out: str, tmp_path: Path) -> list[str]:
    data = ["--dataset", "sample:cifar10", "--n-examples", "4"]
    if kind == "score":
        return ["score", "--no-progress", "--model", source, *data, "--steps", "1", "--out", out]
    if kind == "evaluate":
        return ["evaluate", "--no-progress", "--model", source, *data, "--out", out]
    if kind == "train":
        return ["train", "--config", "paper_pgd_at", "--set", f"model.source={source}", "--set",
                "optim.epochs=1", "--set", "data.train=sample:cifar10", "--set", "data.eval=sample:cifar10",
                "--out", out]
    manifest = tmp_path / "m.yaml"
    manifest.write_text(json.dumps({"dataset": "cifar10", "threat_model": "Linf",
                                    "models": [{"name": "M", "source": source}]}))
    return ["sweep", "--manifest", str(manifest), "--data-dir", "npz:" + str(tmp_path / "none.npz"),
            "--out", out]


@pytest.mark.parametrize("kind", ["score", "evaluate", "train", "sweep"])
@pytest.mark.parametrize("where", ["below_a_file", "proc", "read_only"])
def test_unwritable_out_fails_before_any_model_is_built(kind, where, tmp_path, capsys):
    """An --out below a regular file, in /proc, or in a read-only folder: one line naming --out,
    exit status != 0, and the model was never built (no minutes of attacks before the error)."""
    import os

    source, marker = _marker_source(tmp_path)
    if where == "below_a_file":
        (tmp_path / "a_file").write_text("x")
        out = str(tmp_path / "a_file" / "run")
    elif where == "proc":
        out = "/proc/rb_crossclass_out"
    else:
        if os.geteuid() == 0:
            pytest.skip("root ignores folder permissions (the other cases fail for root too)")
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        out = str(locked / "run")
    code = main(_command(kind, source, out, tmp_path))
    err = capsys.readouterr().err
    assert code != 0
    assert f"cannot write to --out {out}" in err and len(err.strip().splitlines()) == 1, err
    assert not marker.exists()


def test_writable_check_leaves_nothing_behind_and_names_the_state_folder(tmp_path, capsys):
    from rb_crossclass.core.io import OutputLocationError, check_output_dir

    target = check_output_dir(tmp_path / "new" / "deeper")
    assert target == tmp_path / "new" / "deeper" and not (tmp_path / "new").exists()  # left as it was
    (tmp_path / "there").mkdir()
    check_output_dir(tmp_path / "there")
    assert list((tmp_path / "there").iterdir()) == []
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputLocationError, match=r"--state .*f is a file, not a folder"):
        check_output_dir(tmp_path / "f" / "state", "--state")
    source, marker = _marker_source(tmp_path)
    code = main(["evaluate", "--model", source, "--dataset", "sample:cifar10", "--out", str(tmp_path / "o"),
                 "--state", str(tmp_path / "f" / "s")])
    assert code != 0 and "cannot write to --state" in capsys.readouterr().err and not marker.exists()


# --------------------------------------------------------------------------- round 3, 9. progress in logs
def test_progress_is_plain_lines_when_stderr_is_not_a_terminal(capsys, monkeypatch):
    """One rule for every bar: not a TTY -> no carriage returns or escapes, a plain line at most
    every LOG_EVERY_SECONDS and at the end; a TTY -> tqdm; disabled -> nothing."""
    from rb_crossclass.core import progress

    bar = progress.progress_bar(total=4, desc="models", unit="model")
    assert isinstance(bar, progress.PlainProgress)
    bar.every = 0.0  # every update is due
    with bar:
        for _ in range(4):
            bar.update(1)
            bar.set_postfix(fooled=1)
    err = capsys.readouterr().err
    assert err.splitlines() == ["models: 1/4 model (25%)"] + [
        f"models: {i}/4 model ({25 * i}%), fooled=1" for i in (2, 3, 4, 4)]
    assert "\r" not in err and "\x1b" not in err
    quiet = progress.progress_bar(total=4, desc="x")  # default interval: only the closing line
    for _ in range(4):
        quiet.update(1)
    quiet.close()
    assert capsys.readouterr().err.splitlines() == ["x: 4/4 it (100%)"]
    assert list(progress.progress_bar(range(3), desc="it", leave=False)) == [0, 1, 2]
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(progress, "stderr_is_terminal", lambda: True)
    from tqdm.auto import tqdm

    assert isinstance(progress.progress_bar(total=1, disable=True), tqdm)
    assert isinstance(progress.progress_bar(total=1), tqdm)


# --------------------------------------------------------------------------- round 3, 2. ImageNet inputs
def _fake_imagenet(root: Path, n: int) -> Path:
    """A val folder in RobustBench's layout: 1000 class folders, the first ``n`` images of its
    5,000-image subset as JPEGs of odd sizes (so resizes and crops matter)."""
    from PIL import Image

    from rb_crossclass.data.benchmark import imagenet_subset_files

    val = root / "val"
    files = imagenet_subset_files(n)
    wnids = {f.split("/")[0] for f in imagenet_subset_files(5000)}  # 997 classes are in the subset
    for wnid in wnids | {f"n9999999{i}" for i in range(1000 - len(wnids))}:
        (val / wnid).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, f in enumerate(files):
        (val / f).parent.mkdir(parents=True, exist_ok=True)
        size = (300 + 37 * i, 331 - 11 * i)
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(val / f)
    return root


def test_imagenet_sweep_feeds_each_model_what_evaluate_feeds_it(tmp_path, monkeypatch):
    """One model per preprocessing of RobustBench's imagenet/Linf zoo (its metadata, read
    independently): the tensors the sweep hands each model equal those `evaluate` reads for it,
    Wong2020Fast gets 288 px, and the split is read once per distinct preprocessing."""
    from rb_crossclass.compat import import_robustbench
    from rb_crossclass.data import open_split
    from rb_crossclass.sweep import JobResult, engines, run_sweep

    import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    zoo = model_dicts[BenchmarkDataset.imagenet][ThreatModel.Linf]
    by_prep: dict = {}
    for name, entry in zoo.items():
        by_prep.setdefault(entry.get("preprocessing"), name)
    assert by_prep.get("Crop288") == "Wong2020Fast" and len(by_prep) >= 4
    chosen = sorted(by_prep.values())
    root = _fake_imagenet(tmp_path / "imagenet", 3)
    fed: dict[str, torch.Tensor] = {}

    def record(job, settings, split=None):
        fed[job.name] = split.x.clone()
        return JobResult(job.name, "failed", reason="recorded")

    monkeypatch.setattr(engines, "run_job", record)
    from rb_crossclass.sweep import data as sweep_data

    reads = []
    real_open = sweep_data.open_job_split
    monkeypatch.setattr(sweep_data, "open_job_split", lambda job, s: reads.append(job) or real_open(job, s))
    run_sweep(tmp_path / "out", robustbench="imagenet:Linf", models=chosen, data_dir=str(root),
              n_examples=3, progress=False)
    assert sorted(fed) == chosen
    for name in chosen:
        expected = open_split("imagenet", "test", 3, str(root), model_name=name, threat_model="Linf").x
        assert torch.equal(fed[name], expected), name
        px = 288 if zoo[name].get("preprocessing") == "Crop288" else 224
        assert tuple(fed[name].shape) == (3, 3, px, px), name
    # read once per distinct pipeline (the keys: robustbench's transforms), not once per model
    assert len(reads) == len({sweep_data.preprocessing_key("imagenet", n, "Linf") for n in chosen}) >= 4
    default = fed[by_prep["Res256Crop224"]]
    assert not torch.equal(fed[by_prep["BicubicRes256Crop224"]], default)  # another interpolation


# --------------------------------------------------------------------------- issue 19, round 3
@pytest.mark.parametrize("name", ["$x^{$", "a$b$c", "$\\frac{1}{0}$", "x_{1}^$"])
def test_math_like_model_ids_and_class_names_build_a_board(tmp_path, capsys, name):
    """Recipe: a card file named '$x^{$.json' (a valid card) crashed the whole board build: the ID
    was parsed as matplotlib mathtext in the per-model heatmap; class names are drawn the same way."""
    from test_leaderboard import measured_card

    cards = tmp_path / "cards"
    cards.mkdir()
    card = measured_card("X", "40.00", cas=3.0)
    card["cross_class"]["class_names"] = [name, "$\\b{"]
    card["cross_class"]["pgd"] = dict(card["cross_class"])
    (cards / f"{name}.json").write_text(json.dumps(card))
    code, out, err = _cli(capsys, "leaderboard", "--cards", str(cards), "--out", str(tmp_path / "b"))
    assert code == 0, err
    board = json.loads((tmp_path / "b" / "leaderboard.json").read_text())
    assert [r["model_id"] for r in board["entries"]] == [name]
    assert any(p.suffix == ".html" for p in (tmp_path / "b" / "models").iterdir())


def _bomb_manifest(levels: int = 9, width: int = 9, leaf: str = '"lol"') -> str:
    """A manifest whose card field is a classic alias bomb (``width ** levels`` leaves)."""
    lines = [f"l0: &l0 {leaf}"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    anchors = "\n".join("  " + line for line in lines)
    return ("dataset: mnist\nthreat_model: Linf\neps: '0.3'\n"
            f"x_anchors:\n{anchors}\n"
            f"models:\n  - name: M\n    source: timm:resnet18\n    card: {{name: t, x_bomb: *l{levels}}}\n")


YAML_BOMBS = {
    "billion_laughs": _bomb_manifest(),
    "long_string_times_aliases": _bomb_manifest(levels=4, width=10, leaf='"' + "x" * 900 + '"'),
    "recursive_alias": ("dataset: mnist\nthreat_model: Linf\nmodels:\n"
                        "  - {name: M, source: timm:resnet18, card: {name: t, x_self: &s [*s]}}\n"),
    "deep_nesting": ("dataset: mnist\nthreat_model: Linf\nmodels:\n  - name: M\n    source: timm:resnet18\n"
                     "    card: {name: t, x_deep: " + "[" * 900 + "]" * 900 + "}\n"),
    "merge_key_bomb": ("dataset: mnist\nthreat_model: Linf\nx_a: &a {" + ", ".join(f"k{i}: {'v' * 99}"
                       for i in range(100)) + "}\nx_b: &b {" + ", ".join(f"b{i}: *a" for i in range(100))
                       + "}\nx_c: [" + ", ".join(["*b"] * 100) + "]\nmodels: []\n"),
    "huge_string": ("dataset: mnist\nthreat_model: Linf\nmodels:\n  - name: M\n    source: timm:resnet18\n"
                    f"    card: {{name: t, footnote: {'y' * 200_000}}}\n"),
    "footnote_longer_than_a_card_holds": ("dataset: mnist\nthreat_model: Linf\nmodels:\n  - name: M\n"
                                          "    source: timm:resnet18\n"
                                          f"    card: {{name: t, footnote: {'y' * 30_000}}}\n"),
}


@pytest.mark.parametrize("kind", list(YAML_BOMBS))
def test_manifest_that_expands_too_far_is_refused_up_front(tmp_path, capsys, kind):
    """Recipe: a 1.6 KB manifest with an alias bomb in a card field ended in MemoryError after the
    model was scored; a 1.3 KB one wrote a 13 MB card. Refused on read, one line naming the file."""
    from rb_crossclass.sweep import ManifestError, load_manifest

    path = tmp_path / f"{kind}.yaml"
    path.write_text(YAML_BOMBS[kind])
    t0 = time.perf_counter()
    with pytest.raises(ManifestError, match=str(path).replace("\\", "\\\\")):
        load_manifest(path)
    assert time.perf_counter() - t0 < 2  # refused before anything was expanded
    code, out, err = _cli(capsys, "sweep", "--manifest", str(path), "--out", str(tmp_path / "o"))
    assert code == 1 and err.count("\n") == 1 and str(path) in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_yaml_bounds_keep_anchors_that_stay_small(tmp_path):
    from rb_crossclass.core.yaml_limits import YAMLLimitError, YAMLLimits, load_yaml
    from rb_crossclass.sweep import load_manifest

    path = tmp_path / "ok.yaml"
    path.write_text("dataset: mnist\nthreat_model: Linf\nx_card: &c {name: Paper, venue: ICLR 2020}\n"
                    "models:\n  - {name: A, source: timm:resnet18, card: *c}\n"
                    "  - {name: B, source: timm:resnet18, card: {<<: *c, name: Other}}\n")
    jobs = load_manifest(path).jobs
    assert [j.card["name"] for j in jobs] == ["Paper", "Other"] and jobs[1].card["venue"] == "ICLR 2020"
    assert load_yaml("a: &x [1, 2]\nb: [*x, *x]", "s") == {"a": [1, 2], "b": [[1, 2], [1, 2]]}
    assert load_yaml("", "s") is None
    small = YAMLLimits(max_nodes=10)
    with pytest.raises(YAMLLimitError, match="more than 10 YAML nodes"):
        load_yaml("a: &x [1, 2, 3]\nb: [*x, *x, *x]", "s", small)
    with pytest.raises(YAMLLimitError, match="not valid YAML"):
        load_yaml("a: [1,\n", "s")
    with pytest.raises(YAMLLimitError, match="not valid YAML"):
        load_yaml("a: 1\n---\nb: 2\n", "s")


def test_other_yaml_inputs_refuse_alias_bombs_in_one_line(tmp_path, capsys):
    bomb = _bomb_manifest().split("models:")[0]
    config = tmp_path / "train.yaml"
    config.write_text(bomb)
    code, _, err = _cli(capsys, "train", "--config", str(config), "--out", str(tmp_path / "run"))
    assert code == 1 and err.count("\n") == 1 and "YAML nodes" in err and str(config) in err
    zoo_dir = tmp_path / "zoo" / "cifar10" / "Linf"
    zoo_dir.mkdir(parents=True)
    (zoo_dir / "Z.yaml").write_text(bomb)
    code, _, err = _cli(capsys, "zoo", "list", "--root", str(tmp_path / "zoo"))
    assert code == 1 and err.count("\n") == 1 and "YAML nodes" in err and "Z.yaml" in err


def _nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("levels", [40, 990, 5000])
def test_deeply_nested_cards_are_reported_and_every_card_is_checked(tmp_path, capsys, levels):
    """Recipe: a card nested ~990 levels deep crashed 'card validate' (RecursionError from repr in
    the error message) and a folder check stopped at that file, leaving the rest unchecked."""
    from test_leaderboard import measured_card

    from rb_crossclass.cards import CardError, card_problems, load_card

    base = json.dumps(measured_card("M", "40.00", cas=3.0))
    deep = _nested(levels)
    variants = {
        "A_x_key": base[:-1] + f', "x_deep": {deep}}}',
        "B_footnote": base[:-1] + f', "footnote": {deep}}}',
        "C_matrix": base.replace('"matrix": [[1.0, 0.5], [0.5, 1.0]]', f'"matrix": [[1.0, 0.5], {deep}]'),
        "D_names": base.replace('"class_names": ["a", "b"]', f'"class_names": ["a", {deep}]'),
        "E_whole_card": "[" * levels + base + "]" * levels,
        "G_objects": base[:-1] + ', "footnote": ' + '{"a": ' * levels + "1" + "}" * levels + "}",
    }
    for name, text in variants.items():
        (tmp_path / f"{name}.json").write_text(text)
    (tmp_path / "H_good.json").write_text(base)
    code, out, err = _cli(capsys, "card", "validate", str(tmp_path))
    assert code == 1 and "Traceback" not in err
    lines = out.splitlines()
    assert len(lines) == 7 and lines[-1].startswith("ok") and lines[-1].endswith("H_good.json")
    assert all(line.startswith("INVALID") and "nested" in line for line in lines[:-1]), lines
    assert all(len(line) < 500 for line in lines)
    assert err.strip() == "1 of 7 cards valid"
    for name in variants:
        with pytest.raises(CardError, match="nested"):
            load_card(tmp_path / f"{name}.json")
    problems = card_problems(json.loads(variants["A_x_key"])) if levels < 900 else []
    assert not problems or "nested deeper than 32" in problems[0]
    code, _, err = _cli(capsys, "leaderboard", "--cards", str(tmp_path), "--out", str(tmp_path / "b"))
    assert code == 1 and err.count("\n") == 1 and "nested" in err


def test_card_validate_goes_on_after_a_file_it_cannot_check(tmp_path, capsys, monkeypatch):
    """Whatever goes wrong with one file, the others are still checked and the run ends in 1."""
    from rb_crossclass.cards import check as card_check  # where card validate reads each file

    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.json").write_text("{}")
    real = card_check.read_card_json

    def flaky(path):
        if path.name == "b.json":
            raise RecursionError("maximum recursion depth exceeded")
        return real(path)

    monkeypatch.setattr(card_check, "read_card_json", flaky)
    code, out, err = _cli(capsys, "card", "validate", str(tmp_path))
    assert code == 1 and "could not be checked (RecursionError" in out
    assert sum(line.startswith("INVALID") for line in out.splitlines()) >= 3


def _per_class(names: list[str]) -> dict:
    k = len(names)
    return {"class_names": names, "counts": [5] * k, "clean_accuracy": [0.8] * k,
            "robust_accuracy": [0.4] * k, "robust_interval": [[0.1, 0.7]] * k, "worst_class": names[0],
            "worst_class_robust_accuracy": 0.4, "spread": 0.0}


def _rich_card() -> dict:
    from test_leaderboard import measured_card

    card = measured_card("M", "40.00", cas=3.0)
    cc = card["cross_class"]
    cc["top_pairs"] = [{"i": 0, "j": 1, "class_i": "a", "class_j": "b", "cosine": 0.5}]
    cc["per_class"] = _per_class(["a", "b"])
    cc["pgd"] = json.loads(json.dumps(cc))
    card["evaluation"]["per_class"] = _per_class(["a", "b"])
    card["evaluation"]["adjustments"] = {"n_target_classes": 1}
    return card


def _set(card: dict, path: str, value) -> dict:
    card = json.loads(json.dumps(card))
    *parents, last = path.split(".")
    target = card
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[int(last) if last.isdigit() else last] = value
    return card


BOARD_BREAKERS = {
    "cosine_4000_digits": ("cross_class.pgd.top_pairs.0.cosine", 10**3999, "top_pairs"),
    "cosine_1e308": ("cross_class.pgd.top_pairs.0.cosine", 1e308, "top_pairs"),
    "pair_index_huge": ("cross_class.top_pairs.0.i", 10**3000, "top_pairs"),
    "pair_class_name_huge": ("cross_class.top_pairs.0.class_i", "x" * 100_000, "top_pairs"),
    "adjustment_4000_digits": ("evaluation.adjustments.n_target_classes", -(10**3999), "adjustments"),
    "robust_acc_one_short": ("evaluation.per_class.robust_accuracy", [0.4], "per_class.robust_accuracy"),
    "counts_one_long": ("evaluation.per_class.counts", [5, 5, 5], "per_class.counts"),
    "clean_one_short_pgd": ("cross_class.pgd.per_class.clean_accuracy", [0.8], "per_class.clean_accuracy"),
    "interval_one_short": ("cross_class.per_class.robust_interval", [[0.1, 0.2]], "robust_interval"),
    "names_one_long": ("evaluation.per_class.class_names", ["a", "b", "c"], "per_class"),
    "attack_setting_is_a_matrix": ("cross_class.pgd.attack.norm", [[1.0] * 300] * 300, "attack"),
    "attack_with_many_settings": ("cross_class.attack", {"name": "pgd", **{f"k{i}": i for i in range(99)}},
                                  "attack"),
    "list_of_100k_scores": ("cross_class.per_class_scores", [0.5] * 100_000, "100000 entries"),
    "package_versions_10k": ("evaluation.package_versions", {f"p{i}": "1" for i in range(10_000)},
                             "package_versions"),
}


@pytest.mark.parametrize("kind", list(BOARD_BREAKERS))
def test_cards_the_board_cannot_render_do_not_validate(tmp_path, capsys, kind):
    """Recipe: cards that validated but crashed 'leaderboard': a 4,000-digit integer in
    top_pairs[].cosine (OverflowError in the template) and a per-class accuracy list one element
    short of the class names (IndexError). What the schema accepts, the board renders."""
    from rb_crossclass.cards import CardError, validate_card

    path, value, field = BOARD_BREAKERS[kind]
    card = _set(_rich_card(), path, value)
    with pytest.raises(CardError, match=field.replace(".", r"\.")):
        validate_card(card, "c")
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "M.json").write_text(json.dumps(card))
    code, _, err = _cli(capsys, "leaderboard", "--cards", str(cards), "--out", str(tmp_path / "b"))
    assert code == 1 and err.count("\n") == 1 and "M.json" in err and len(err) < 1000


@pytest.mark.parametrize("path,value", [
    ("cross_class.pgd.top_pairs.0.cosine", 1.000001), ("cross_class.pgd.top_pairs.0.cosine", -1.000001),
    ("cross_class.pgd.top_pairs.0.cosine", None), ("cross_class.pgd.top_pairs.0", {}),
    ("cross_class.pgd.top_pairs", []), ("evaluation.per_class.robust_accuracy", [None, 1]),
    ("evaluation.per_class", _per_class(["only"] * 1)), ("evaluation.adjustments.n_target_classes", 10**15),
])
def test_cards_at_the_schema_bounds_render(tmp_path, capsys, path, value):
    from rb_crossclass.cards import validate_card

    card = _set(_rich_card(), path, value)
    validate_card(card, "c")
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "M.json").write_text(json.dumps(card))
    code, _, err = _cli(capsys, "leaderboard", "--cards", str(cards), "--out", str(tmp_path / "b"))
    assert code == 0, err
    assert len(list((tmp_path / "b" / "models").glob("*.html"))) == 1


def _checkpoint_files(tmp: Path) -> dict[str, bytes]:
    from safetensors.torch import save_file

    from conftest import tiny_convnet

    state = tiny_convnet().state_dict()
    torch.save(state, tmp / "zip.pt")
    torch.save(state, tmp / "legacy.pt", _use_new_zipfile_serialization=False)
    torch.save({"state_dict": state, "epoch": 3}, tmp / "nested.pt")
    save_file(state, tmp / "w.safetensors")
    return {p.name: p.read_bytes() for p in (tmp / "zip.pt", tmp / "legacy.pt", tmp / "nested.pt",
                                              tmp / "w.safetensors")}


UNPICKLING_ADVICE = ("weights_only=False", "weights_only` set to `False", "safe_globals", "arbitrary code",
                     "trust")


def test_every_cut_of_a_checkpoint_is_one_clear_error(tmp_path):
    """Recipe: a .pt checkpoint cut to 1 or 22 bytes gave an IndexError traceback (longer cuts got
    the clean line). Every cut of every format ends in CheckpointError naming the file."""
    from rb_crossclass.models import read_state_dict
    from rb_crossclass.models.checkpoint import CheckpointError

    for name, data in _checkpoint_files(tmp_path).items():
        cuts = [*range(65), 100, 200, 500, len(data) // 2, len(data) - 8, len(data) - 1]
        for n in cuts:
            path = tmp_path / f"cut{n}_{name}"
            path.write_bytes(data[:n])
            with pytest.raises(CheckpointError) as err:
                read_state_dict(path)
            message = str(err.value)
            assert str(path) in message, (name, n, message)
            assert not any(a in message for a in UNPICKLING_ADVICE), (name, n, message)
            path.unlink()


@pytest.mark.parametrize("cut", [1, 22])
def test_cut_legacy_checkpoint_on_the_command_line(tmp_path, capsys, cut):
    from test_malformed_inputs import SCORE

    data = _checkpoint_files(tmp_path)["legacy.pt"]
    path = tmp_path / "cut.pt"
    path.write_bytes(data[:cut])
    code, _, err = _cli(capsys, *SCORE, "--dataset", "sample:cifar10", "--checkpoint", str(path),
                        "--out", str(tmp_path / "o"))
    assert code == 1 and err.count("\n") == 1 and str(path) in err and "Traceback" not in err


@pytest.mark.parametrize("content", [
    b"\xef\xbb\xbf<!DOCTYPE html><html><body>Quota exceeded</body></html>",
    b"<!-- saved from url=(0014)about:internet -->\n<html><head></head></html>",
    b"\xef\xbb\xbf \r\n\t<!-- a --><!-- b -->\n<!doctype html>",
    "\ufeff<html>".encode("utf-16"),
    b"\n\n   <HTML><BODY>Google Drive - Virus scan warning</BODY></HTML>",
    b"<!-- " + b"x" * 10_000,
])
def test_html_pages_given_as_checkpoints_are_named_as_such(tmp_path, content):
    """Recipe: an HTML file starting with a UTF-8 BOM or '<!--' got torch's advice to retry with
    weights_only=False (advice to unpickle). Detected after BOMs, whitespace and comments."""
    from rb_crossclass.models import read_state_dict
    from rb_crossclass.models.checkpoint import CheckpointError

    path = tmp_path / "page.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="is an HTML page") as err:
        read_state_dict(path)
    assert not any(a in str(err.value) for a in UNPICKLING_ADVICE)


def test_torch_advice_to_unpickle_is_never_shown(tmp_path):
    """A torch file that pickles an object: the error names the object, never the way round."""
    import argparse

    from rb_crossclass.core.errors import without_unsafe_advice
    from rb_crossclass.models import read_state_dict
    from rb_crossclass.models.checkpoint import CheckpointError

    torch.save({"args": argparse.Namespace(lr=0.1), "w": torch.zeros(1)}, tmp_path / "obj.pt")
    with pytest.raises(CheckpointError, match="argparse.Namespace") as err:
        read_state_dict(tmp_path / "obj.pt")
    assert not any(a in str(err.value) for a in UNPICKLING_ADVICE), str(err.value)
    (tmp_path / "junk.pt").write_bytes(b"\x80\x02\xef garbage")
    with pytest.raises(CheckpointError) as err:
        read_state_dict(tmp_path / "junk.pt")
    assert not any(a in str(err.value) for a in UNPICKLING_ADVICE), str(err.value)
    assert without_unsafe_advice("Weights only load failed. Re-running `torch.load` with `weights_only` set "
                                 "to `False` will likely succeed.\n\tWeightsUnpickler error: bad") \
        == "Weights only load failed. unpickler error: bad"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("where", ["fc.weight", "fc.bias", "conv.weight"])
def test_non_finite_weights_are_named_not_blamed_on_the_structure(value, where):
    """Recipe: NaN/inf weights were diagnosed as 'the model changes the logits after that layer'."""
    from rb_crossclass.models import check_contract

    net = Tiny()
    with torch.no_grad():
        dict(net.named_parameters())[where].view(-1)[0] = value
    model = wrap_model(net)
    with pytest.raises(ModelContractError, match=f"NaN or inf: tensor 'net.{where}'") as err:
        check_contract(model, PROBE)
    assert err.value.reason == "non_finite" and "after that layer" not in str(err.value)


def test_non_finite_logits_from_finite_weights_are_named():
    from rb_crossclass.models import check_contract

    class Overflow(Tiny):
        def features(self, x):
            return super().features(x) * 1e30 * 1e30  # inf in float32

    with pytest.raises(ModelContractError, match="logits on a probe batch .* hold NaN or inf") as err:
        check_contract(wrap_model(Overflow()), PROBE)
    assert err.value.reason == "non_finite"


@pytest.mark.parametrize("text, why", [
    ("0", "> 0"), ("0/255", "> 0"), ("0.0", "> 0"), ("1e-400", "too small"), ("1e-400/255", "too small"),
    ("1_0/255", "ASCII"), ("1_0", "ASCII"), ("\uff18/255", "ASCII"), ("\u0668/255", "ASCII"),
    ("8/\uff12\uff15\uff15", "ASCII"), ("0x10", "ASCII"), ("8 / 255", "ASCII"), ("1e99999999", "ASCII"),
])
def test_attack_radii_that_make_no_sense_are_refused(capsys, tmp_path, text, why):
    """Recipe: --eps 0, 1e-400 (0 once parsed), 1_0/255 and full-width digits were accepted."""
    for cmd in (["score", "--model", "timm:resnet18"], ["evaluate", "--model", "timm:resnet18"],
                ["sweep", "--manifest", "m.yaml"]):
        code, _, err = _cli(capsys, *cmd, "--eps", text, "--out", str(tmp_path / "o"))
        assert code == 1 and "--eps" in err and why in err and err.count("\n") == 1, (cmd, err)


def test_eps_parsing_keeps_what_was_right():
    from rb_crossclass.core.threat import ThreatModelError, check_attack_eps, parse_eps

    assert parse_eps("8/255") == 8 / 255 and parse_eps(".5") == 0.5 and parse_eps("1e-3") == 0.001
    assert parse_eps("0") == 0.0 and parse_eps("2.5e-1/10") == 0.025  # >= 0 where 0 means clean
    assert parse_eps(" 4/255 ") == 4 / 255
    with pytest.raises(ThreatModelError, match="> 0"):
        check_attack_eps(0.0)
    for bad in ("1e-400", "\uff18", "1_0", "nan", "inf", "1e999"):
        with pytest.raises(ThreatModelError):
            parse_eps(bad)


@pytest.mark.parametrize("argv, flag", [
    (["score", "--model", "timm:resnet18", "--steps", "0"], "--steps"),
    (["score", "--model", "timm:resnet18", "--step-size", "0"], "--step-size"),
    (["score", "--model", "timm:resnet18", "--steps", "\uff12\uff10"], "--steps"),
    (["score", "--model", "timm:resnet18", "--n-examples", "1_0"], "--n-examples"),
    (["score", "--model", "timm:resnet18", "--seed", "\u0661"], "--seed"),
    (["synthetic", "patch", "--steps", "0"], "--steps"),
])
def test_counts_that_make_no_sense_are_refused(capsys, tmp_path, argv, flag):
    code, _, err = _cli(capsys, *argv, "--out", str(tmp_path / "o"))
    assert code == 1 and f"argument {flag}" in err and err.count("\n") == 1, err


@pytest.mark.parametrize("out", ["/", "/.", "//", "~", "/usr", "/etc/", "/tmp/..", "/tmp"])
@pytest.mark.parametrize("cmd", [["score", "--model", "timm:resnet18"], ["leaderboard", "--cards", "x"],
                                 ["sweep", "--manifest", "m.yaml"],
                                 ["train", "--config", "cpu_small_pgd_at"]])
def test_dangerous_output_folders_are_refused(capsys, out, cmd):
    """Recipe: --out / wrote into /. The root, system folders and the home folder itself never are."""
    import os

    code, _, err = _cli(capsys, *cmd, "--out", os.path.expanduser(out))
    assert code == 1 and "argument --out" in err and "never an output folder" in err, err


def test_output_folders_below_home_and_tmp_are_fine(tmp_path):
    from pathlib import Path

    from rb_crossclass.core.io import dangerous_output_dir

    assert dangerous_output_dir(tmp_path / "o") is None and dangerous_output_dir(Path.home() / "runs") is None
    assert dangerous_output_dir(tmp_path) is None and dangerous_output_dir(".") is None
    link = tmp_path / "root_link"
    link.symlink_to("/")
    assert dangerous_output_dir(link) == "the root of the file system"


@pytest.mark.parametrize("code", ["ENOSPC", "EDQUOT", "EIO"])
def test_a_full_disk_names_the_file_that_could_not_be_written(tmp_path, capsys, monkeypatch, code):
    """Recipe: disk-full (ENOSPC) named no file."""
    import errno
    import os

    from test_leaderboard import measured_card

    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "M.json").write_text(json.dumps(measured_card("M", "40.00", cas=3.0)))

    def full(fd):
        raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)))

    monkeypatch.setattr(os, "fsync", full)
    out = tmp_path / "board"
    rc, _, err = _cli(capsys, "leaderboard", "--cards", str(cards), "--out", str(out))
    assert rc == 1 and err.count("\n") == 1 and f"cannot write {tmp_path}/" in err, err
    assert err.split("cannot write ")[1].split(":")[0].endswith((".html", ".json", ".md", ".png")), err
    assert ("disk is full" in err) == (code != "EIO")
    assert not out.exists()


def test_a_full_disk_while_torch_saves_names_the_checkpoint(tmp_path, monkeypatch):
    from rb_crossclass.core.io import FileWriteError
    from rb_crossclass.train.checkpoints import save_checkpoint

    def failing(obj, f, *args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter failed writing "
                           "file data/0: file write failed")

    monkeypatch.setattr(torch, "save", failing)
    with pytest.raises(FileWriteError, match=f"cannot write {tmp_path / 'last'}"):
        save_checkpoint(tmp_path / "last", Tiny(), {"epoch": 1}, training_state={"step": 1})
    assert not (tmp_path / "last").exists()


def test_readme_says_py_sources_run_code():
    docs = Path(__file__).resolve().parent.parent / "docs"  # the manual moved from README.md to docs/
    pages = ("model-sources.md", "commands/sweep.md")
    text = "\n".join((docs / page).read_text(encoding="utf-8") for page in pages)
    row = next(line for line in text.splitlines() if line.startswith("| `py:<module>:<callable>`"))
    assert "runs that Python code" in row and "someone else's manifest" in row
    assert "A `py:` source runs code" in text


def _synthetic_scores(k: int, attack: str, seed: int) -> dict:
    """A scoring result of K classes without a model: attribution vectors drawn at random."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(k, 32))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    m = a @ a.T
    m[3, :] = m[:, 3] = np.nan  # a class without samples
    cas = float(np.nansum(np.clip(m, 0, None)) - np.nansum(np.clip(np.diag(m), 0, None)))
    names = [f"n{i:08d} class {i}" for i in range(k)]
    return {"cas": cas, "normalized_cas": cas / (k * (k - 1)), "fsi": 0.3, "clean_cas": cas / 2,
            "clean_normalized_cas": cas / 2 / (k * (k - 1)), "clean_fsi": 0.2, "matrix": m,
            "clean_matrix": m * 0.5, "class_names": names, "attack": {"name": attack}, "n_examples": 5 * k,
            "per_class_counts": [5] * k, "per_class_scores": [1.0] * k,
            "top_pairs": [{"i": 0, "j": 1, "class_i": names[0], "class_j": names[1], "cosine": 0.5}],
            "per_class": _per_class(names)}


@pytest.fixture(scope="module")
def imagenet_size_card(tmp_path_factory):
    """A K = 1,000 evaluate-style card (PGD protocol + AutoAttack examples, per-class results),
    written by our writer."""
    from rb_crossclass.cards import card_from_results, protocol_block, write_card

    k = 1000
    cc = protocol_block(_synthetic_scores(k, "pgd", 0), _synthetic_scores(k, "autoattack", 1))
    evaluation = {"n_examples": 5 * k, "threat_model": "Linf", "autoattack_version": "standard", "seed": 0,
                  "batch_size": 250, "date": "2025-01-01T00:00:00+00:00", "package_versions": {"torch": "2"},
                  "seconds": 1.0, "per_class": _per_class([f"n{i:08d} class {i}" for i in range(k)])}
    card = card_from_results(name="ImageNet K=1000", dataset="imagenet", threat_model="Linf", eps="4/255",
                             clean_accuracy=0.7, robust_accuracy=0.4, venue="ICML 2025", cross_class=cc,
                             evaluation=evaluation)
    folder = tmp_path_factory.mktemp("k1000") / "cards"
    path = folder / "imagenet" / "Linf" / "Big1000.json"
    write_card(card, path)
    return path, cc


def test_an_imagenet_size_card_is_written_small_and_read_back(imagenet_size_card, capsys):
    """Recipe: a K = 800 card was written (35 MB) and then refused by our own reader; a K = 1,000
    evaluate card was 119 MB. Matrices above 100 classes are packed; the card reads back exactly."""
    from rb_crossclass.cards import load_card, matrix_array
    from rb_crossclass.cards.files import MAX_CARD_BYTES

    path, cc = imagenet_size_card
    size = path.stat().st_size
    assert size < 20 * 2**20 and size < MAX_CARD_BYTES
    card = load_card(path)
    for block, key in ((card["cross_class"], "matrix"), (card["cross_class"]["autoattack"], "clean_matrix")):
        m = matrix_array(block[key])
        assert m.shape == (1000, 1000) and np.isnan(m[3]).all() and np.isnan(m[:, 3]).all()
    expected = _synthetic_scores(1000, "pgd", 0)["matrix"]
    assert np.allclose(matrix_array(card["cross_class"]["matrix"]), expected, atol=1e-6, equal_nan=True)
    code, out, err = _cli(capsys, "card", "validate", str(path))
    assert code == 0 and out.startswith("ok"), err
    code, out, _ = _cli(capsys, "card", "show", str(path))
    assert code == 0 and "1000x1000" in out


def test_an_imagenet_size_card_builds_a_board_with_a_bounded_heatmap(imagenet_size_card, tmp_path, capsys):
    import base64
    import re

    from rb_crossclass.figures.canvas import MAX_PIXELS

    path, _ = imagenet_size_card
    cards = path.parent.parent.parent
    code, _, err = _cli(capsys, "leaderboard", "--cards", str(cards), "--dataset", "imagenet",
                        "--out", str(tmp_path / "b"))
    assert code == 0, err
    page = next((tmp_path / "b" / "models").glob("*.html")).read_text()
    png = base64.b64decode(re.search(r'src="data:image/png;base64,([^"]+)"', page).group(1))
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width <= 1500 and height <= 1500, (width, height)  # was 12,260 x 12,180 at K = 1,000
    assert width * height <= MAX_PIXELS


@pytest.mark.parametrize("k, dpi", [(2, None), (21, None), (150, None), (1000, None), (2, 1200),
                                    (1000, 1200)])
def test_heatmaps_are_bounded_in_pixels_whatever_k_and_dpi(tmp_path, k, dpi):
    from rb_crossclass.figures import FigureStyle, heatmap_size_px, plot_attribution_matrix
    from rb_crossclass.figures.canvas import MAX_PIXELS

    m = np.eye(k)
    path = plot_attribution_matrix(m, None, tmp_path / "h.png", style=FigureStyle(dpi=dpi))
    png = path.read_bytes()
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    expected = heatmap_size_px(k, dpi or 100)
    assert width * height <= MAX_PIXELS and abs(width - expected[0]) <= 1 and abs(height - expected[1]) <= 1
    if dpi is None:
        assert width <= 1500 and height <= 1500


def test_packed_matrices_that_do_not_decode_are_card_errors():
    from test_leaderboard import measured_card

    from rb_crossclass.cards import CardError, validate_card
    from rb_crossclass.cards.matrices import pack_matrix

    card = measured_card("M", "40.00", cas=3.0)
    good = pack_matrix([[1.0, 0.5], [0.5, 1.0]])
    card["cross_class"]["matrix"] = good
    validate_card(card, "c")  # a small matrix may be packed too
    import base64
    import zlib

    bomb = base64.b64encode(zlib.compress(b"\0" * 50_000_000)).decode()
    for bad, why in (({**good, "k": 3}, "3x3|expected"), ({**good, "data": "!!"}, "cannot be decoded"),
                     ({**good, "data": bomb}, "expected"), ({**good, "layout": "diag"}, "layout"),
                     ({**good, "extra": 1}, "unknown key|extra")):
        card["cross_class"]["matrix"] = bad
        with pytest.raises(CardError, match=why):
            validate_card(card, "c")


@pytest.mark.parametrize("text", ["0", "0/255", "\uff18/255", "1_0/255", "1e-400"])
def test_zoo_entry_radius_is_a_radius(capsys, tmp_path, text):
    code, _, err = _cli(capsys, "zoo", "add", "--run", str(tmp_path), "--name", "M", "--eps", text)
    assert code == 1 and "argument --eps" in err and err.count("\n") == 1, err
