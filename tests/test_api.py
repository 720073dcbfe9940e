"""The Python API behind the commands: top-level exports (lazy), ComputeSettings passed whole
(old keywords deprecated), the one class-count rule, official cards, the crossclass.json record
shared by ``score`` and the demo, ``score_source`` / ``evaluate_source``, and ``card show``'s table."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import rb_crossclass
from rb_crossclass.attacks import PGDConfig
from rb_crossclass.cards import (
    CardDescription,
    CardError,
    card_from_results,
    card_table,
    fetch_official_card,
    load_card,
    merge_descriptive,
    official_base_card,
    write_card,
)
from rb_crossclass.cli import main
from rb_crossclass.core.datasets import known_dataset
from rb_crossclass.core.errors import RBCrossclassError
from rb_crossclass.crossclass import ComputeSettings, ScoringError, score_examples, score_model, score_source
from rb_crossclass.evaluate import AutoAttackConfig, EvaluateError, evaluate_model, evaluate_source
from rb_crossclass.models import ModelSpec, build_model_for_data, reconcile_classes

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
TINY = f"py:{TESTS / 'conftest.py'}:tiny_convnet"
ZOO_CARD = ROOT / "model_zoo" / "cifar10" / "Linf" / "RBCrossclass2025CPU_PGD-AT.json"


def _python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)


# --------------------------------------------------------------------------- top-level exports
def test_import_rb_crossclass_and_commands_common_import_no_torch():
    done = _python(
        "import sys, rb_crossclass, rb_crossclass.commands.common\n"
        "heavy = [m for m in ('torch', 'numpy', 'matplotlib', 'timm') if m in sys.modules]\n"
        "assert not heavy, heavy\nprint(rb_crossclass.__version__)"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == rb_crossclass.__version__


def test_every_top_level_export_resolves_to_its_subpackage_object():
    import importlib

    assert rb_crossclass.__all__ == ["__version__", *rb_crossclass._EXPORTS]
    for name, home in rb_crossclass._EXPORTS.items():
        value = getattr(rb_crossclass, name)
        assert value is getattr(importlib.import_module(f"rb_crossclass.{home}"), name), name
        assert callable(value), name
    importlib.import_module(
        "rb_crossclass.train.loop"
    )  # binding the subpackage must not replace the function

    assert rb_crossclass.train is sys.modules["rb_crossclass.train"].train
    assert "score_model" in dir(rb_crossclass)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rb_crossclass.nope  # noqa: B018


# --------------------------------------------------------------------------- ComputeSettings
@pytest.fixture
def batch(cifar_test):
    return cifar_test[0][:24], cifar_test[1][:24]


def test_compute_settings_passed_whole_equal_the_old_keywords(tiny_model, batch):
    x, y = batch
    attack = PGDConfig(eps=8 / 255, steps=2)
    compute = ComputeSettings(batch_size=8, channels_last=False, fold_bn=False)
    new = score_model(tiny_model, x, y, attack=attack, compute=compute, seed=1, progress=False).to_dict()
    with pytest.warns(DeprecationWarning, match=r"score_model\(batch_size=, channels_last=, fold_bn=\)"):
        old = score_model(
            tiny_model,
            x,
            y,
            attack=attack,
            batch_size=8,
            channels_last=False,
            fold_bn=False,
            seed=1,
            progress=False,
        ).to_dict()
    for d in (new, old):
        d.pop("seconds")
    assert new == old
    assert new["compute"]["batch_size"] == 8 and new["compute"]["channels_last"] is False
    given_new = score_examples(tiny_model, x, x, y, compute=compute, progress=False).to_dict()
    with pytest.warns(DeprecationWarning, match="bf16="):
        given_old = score_examples(
            tiny_model,
            x,
            x,
            y,
            batch_size=8,
            channels_last=False,
            fold_bn=False,
            autocast=False,
            progress=False,
        ).to_dict()
    for d in (given_new, given_old):
        d.pop("seconds")
    assert given_new == given_old


def test_compute_settings_refuse_bad_values_and_unknown_keywords(tiny_model, batch):
    x, y = batch
    with pytest.raises(TypeError, match="unexpected keyword argument 'bacth_size'"):
        score_model(tiny_model, x, y, attack=None, bacth_size=8)
    with pytest.raises(TypeError, match="'compile'"):
        score_examples(tiny_model, x, x, y, compile=True)
    with pytest.raises(ScoringError, match="threads must be an integer >= 1"):
        score_model(tiny_model, x, y, attack=None, compute=ComputeSettings(threads=0), progress=False)
    with pytest.raises(ScoringError, match="batch size must be an integer >= 1"):
        score_model(tiny_model, x, y, attack=None, compute=ComputeSettings(batch_size=0), progress=False)
    threads = torch.get_num_threads()
    score_model(tiny_model, x, y, attack=None, compute=ComputeSettings(threads=1), progress=False)
    assert torch.get_num_threads() == 1
    torch.set_num_threads(threads)
    assert ComputeSettings().replace(bf16=True) == ComputeSettings(bf16=True)
    assert [f.name for f in dataclasses.fields(ComputeSettings)] == [
        "device",
        "bf16",
        "channels_last",
        "batch_size",
        "threads",
        "compile",
        "fold_bn",
    ]


def test_evaluate_model_old_keywords_warn(tiny_model, batch):
    x, y = batch
    cfg = AutoAttackConfig(norm="Linf", eps=8 / 255)
    with (
        pytest.warns(DeprecationWarning, match="evaluate_model"),
        pytest.raises(EvaluateError, match="non-zero"),
    ):
        evaluate_model(tiny_model, x[:0], y[:0], cfg, device="cpu", score_bf16=False, score_batch_size=8)
    with pytest.raises(TypeError, match="'autocast'"):
        evaluate_model(tiny_model, x, y, cfg, autocast=True)


# --------------------------------------------------------------------------- the one class-count rule
def test_reconcile_classes_is_the_one_rule_for_model_and_data(tiny_model, caplog):
    cifar = known_dataset("cifar10")
    assert reconcile_classes(tiny_model, cifar, "cifar10") is cifar
    partial = dataclasses.replace(
        cifar,
        num_classes=8,
        class_names=tuple(cifar.class_names[:8]),
        num_classes_source="labels 0..7",
        num_classes_inferred=True,
    )
    widened = reconcile_classes(tiny_model, partial, "npz:part.npz")
    assert widened.num_classes == 10 and widened.class_names == tuple(str(i) for i in range(10))
    assert "head" in widened.num_classes_source and "instead of 8 inferred" in caplog.text
    declared = dataclasses.replace(
        partial, num_classes_inferred=False, num_classes_source="the file's metadata"
    )
    with pytest.raises(
        RBCrossclassError,
        match=r"10 classes \(its head \(10, .*\) but npz:part.npz has 8 "
        r"\(the file's metadata\)",
    ):
        reconcile_classes(tiny_model, declared, "npz:part.npz")
    worker = (ROOT / "rb_crossclass" / "sweep" / "worker.py").read_text()
    assert "reconcile_classes(model, info" in worker and "model.num_classes != info.num_classes" not in worker


def test_model_spec_sizes_the_model_from_the_data():
    mnist = known_dataset("mnist")
    spec = ModelSpec(TINY, seed=3)
    opts = spec.source_options(mnist, "L2")
    assert (opts.num_classes, opts.in_chans, opts.img_size, opts.dataset, opts.threat_model, opts.seed) == (
        10,
        1,
        28,
        "mnist",
        "L2",
        3,
    )
    assert ModelSpec("robustbench:Wong2020Fast").robustbench_name == "Wong2020Fast"
    assert spec.robustbench_name is None
    model = build_model_for_data(ModelSpec(TINY), known_dataset("cifar10"))
    assert model.num_classes == 10


# --------------------------------------------------------------------------- official cards
def _official(tmp_path: Path) -> tuple[Path, dict]:
    card = card_from_results(
        name="Official Paper",
        dataset="cifar10",
        threat_model="Linf",
        eps="8/255",
        clean_accuracy=0.8,
        robust_accuracy=0.4,
        authors="A. Author",
        venue="ICML 2020",
    )
    folder = tmp_path / "model_info"
    write_card(card, folder / "cifar10" / "Linf" / "Someone2020.json")
    return folder, load_card(folder / "cifar10" / "Linf" / "Someone2020.json")


def test_official_cards_local_downloaded_and_offline(tmp_path, monkeypatch):
    folder, official = _official(tmp_path)
    monkeypatch.setenv("RB_CROSSCLASS_OFFICIAL_URL", folder.as_uri())  # urllib reads file: URLs too
    assert fetch_official_card("cifar10", "Linf", "Someone2020") == official
    assert (
        official_base_card(
            dataset="cifar10",
            threat_model="Linf",
            card_name="x",
            robustbench_name="Someone2020",
            from_official=True,
        )
        == official
    )
    assert (
        official_base_card(
            dataset="cifar10",
            threat_model="Linf",
            card_name="x",
            robustbench_name="Someone2020",
            official_cards=folder,
        )
        == official
    )
    assert (
        official_base_card(
            dataset="cifar10",
            threat_model="Linf",
            card_name="Mine",
            robustbench_name=None,
            official_cards=folder,
        )
        is None
    )  # not a robustbench model: filled from flags
    assert (
        official_base_card(dataset="cifar10", threat_model="Linf", card_name="x", robustbench_name=None)
        is None
    )
    with pytest.raises(CardError, match="no official card for robustbench:Other"):
        official_base_card(
            dataset="cifar10",
            threat_model="Linf",
            card_name="x",
            robustbench_name="Other",
            official_cards=folder,
        )
    with pytest.raises(CardError, match="needs a robustbench:<Name> model"):
        official_base_card(
            dataset="cifar10", threat_model="Linf", card_name="x", robustbench_name=None, from_official=True
        )
    with pytest.raises(CardError, match="which dataset does npz:a.npz hold"):
        official_base_card(
            dataset="a",
            threat_model="Linf",
            card_name="x",
            robustbench_name=None,
            official_cards=folder,
            data_spec="npz:a.npz",
        )
    monkeypatch.setenv("RB_CROSSCLASS_OFFICIAL_URL", "http://127.0.0.1:9/model_info")
    with pytest.raises(CardError, match="--from-official: could not download .*--official-cards DIR"):
        fetch_official_card("cifar10", "Linf", "Someone2020", timeout=5)
    merged = merge_descriptive(official, {"venue": "NeurIPS 2021"}, "Mine")
    assert (merged["name"], merged["venue"], merged["authors"]) == ("Mine", "NeurIPS 2021", "A. Author")
    assert merge_descriptive(None, {"venue": "x"}, "Mine") is None


# --------------------------------------------------------------------------- score_source = score
def test_score_source_writes_what_the_score_command_writes(tmp_path, capsys):
    argv = [
        "--model",
        TINY,
        "--dataset",
        "sample:cifar10",
        "--n-examples",
        "16",
        "--steps",
        "1",
        "--seed",
        "2",
        "--batch-size",
        "8",
        "--device",
        "cpu",
        "--no-progress",
    ]
    assert main(["score", *argv, "--out", str(tmp_path / "cli")]) == 0
    printed = capsys.readouterr().out
    run = score_source(
        ModelSpec(TINY, seed=2),
        "sample:cifar10",
        tmp_path / "py",
        n_examples=16,
        steps=1,
        seed=2,
        compute=ComputeSettings(device="cpu", batch_size=8),
        progress=False,
    )
    cli = json.loads((tmp_path / "cli" / "crossclass.json").read_text())
    py = json.loads((tmp_path / "py" / "crossclass.json").read_text())
    assert list(cli) == list(py) == list(run.record)
    for d in (cli, py):
        for key in ("created", "seconds"):
            d.pop(key)
    assert cli == py
    assert [f.name for f in run.files] == [
        "crossclass.json",
        "attribution_matrix.png",
        "attribution_matrix_clean.png",
    ]
    assert "\n".join(run.summary[:-1]) in printed and run.what == "PGD-1 Linf eps=8/255"
    # the record's own fields follow the result's, in the score command's order
    assert list(run.record)[-15:] == [
        "model",
        "dataset",
        "threat_model",
        "eps",
        "eps_string",
        "seed",
        "device",
        "batch_size",
        "bf16",
        "channels_last",
        "compile",
        "fold_batch_norms",
        "world_size",
        "created",
        "versions",
    ]
    assert py["model"]["source"] == TINY and py["device"] == "cpu" and py["batch_size"] == 8


def test_evaluate_source_writes_eval_json_and_the_card(tmp_path):
    run = evaluate_source(
        ModelSpec(TINY),
        "sample:cifar10",
        tmp_path,
        AutoAttackConfig(norm="Linf", eps=8 / 255, version="custom", attacks=("apgd-ce",), batch_size=8),
        n_examples=8,
        compute=ComputeSettings(device="cpu"),
        pgd=False,
        progress=False,
        card_name="Tiny",
        descriptive={"venue": "ICML 2099"},
    )
    assert run.card_path == tmp_path / "Tiny.json" and run.eval_path.is_file()
    card = load_card(run.card_path)
    assert card["venue"] == "ICML 2099" and card["name"] == "Tiny"
    assert json.loads(run.eval_path.read_text())["n_examples"] == 8


# --------------------------------------------------------------------------- card show
def test_card_table_flattens_blocks_with_dotted_keys_and_formats_numbers(capsys):
    card = load_card(ZOO_CARD)
    text = card_table(card)
    assert "{'" not in text and "[[" not in text  # never a raw Python dict or matrix
    assert "evaluation.package_versions.torch" in text and "cross_class.attack.eps" in text
    assert f"{card['cross_class']['attack']['eps']:.4g}" in text
    assert "cross_class.autoattack.matrix" in text and "10x10 matrix" in text
    assert "  clean acc        41.00 %" in text
    assert main(["card", "show", str(ZOO_CARD)]) == 0
    assert capsys.readouterr().out.strip() == text.strip()
    training = {**card, "training": {"recipe": "pgd_at", "optim": {"lr": 0.1, "epochs": 10}, "flag": True}}
    shown = card_table(training)
    assert "training.optim.lr" in shown and "training.flag" in shown and " yes" in shown


def test_value_texts_are_checked_once_in_core_and_the_cli_types_use_them():
    """core.values is the one home of the text checks; the argparse types only translate its error."""
    from rb_crossclass.commands import common
    from rb_crossclass.core import values

    cases = [(values.parse_int, common.int_arg, ["7", " -3 ", "\uff18", "1_0", "x"]),
             (values.parse_percent, common.percent_arg, ["53.4", "53.4%", ".5", "101", "abc", "-1"]),
             (values.parse_venue, common.venue_arg, ["ICML  2025", "ICML", "NeurIPS 2019,"]),
             (values.check_dataset_label, common.dataset_label, ["cifar10", "CIFAR", "a" * 33]),
             (values.parse_non_negative_float, common.non_negative_float, ["0.5", "-1", "nan", "x"])]
    for parse, arg_type, texts in cases:
        for text in texts:
            try:
                expected = parse(text)
            except values.ValueTextError as err:
                with pytest.raises(argparse.ArgumentTypeError, match=re.escape(str(err))):
                    arg_type(text)
            else:
                assert arg_type(text) == expected
    assert values.parse_int("7") == 7 and values.parse_percent("53.4%") == "53.40"
    assert values.parse_venue("ICML  2025") == "ICML 2025"
    with pytest.raises(values.ValueTextError, match=">= 1"):
        values.parse_int("0", minimum=1)
    with pytest.raises(values.ValueTextError, match="root of the file system"):
        values.check_output_dir_path("/")
    with pytest.raises(values.ValueTextError, match="is a folder"):
        values.check_output_file_path(".")


def test_card_from_results_takes_a_description_whole_and_the_old_keywords_warn():
    kw = dict(name="m", dataset="cifar10", threat_model="Linf", eps="8/255", clean_accuracy=0.5,
              robust_accuracy=0.25)
    new = card_from_results(**kw, description=CardDescription(architecture="WRN", venue="ICML 2020",
                                                               footnote="n"))
    with pytest.warns(DeprecationWarning, match=r"card_from_results\(architecture=, venue=, footnote=\)"):
        old = card_from_results(**kw, architecture="WRN", venue="ICML 2020", footnote="n")
    assert json.dumps(new) == json.dumps(old)  # same keys, same order, same values
    with pytest.raises(TypeError, match="'archtecture'"):
        card_from_results(**kw, archtecture="WRN")


def test_check_card_files_reports_every_problem_without_stopping(tmp_path):
    from rb_crossclass.cards import check_card_files

    good = tmp_path / "good.json"
    good.write_text(ZOO_CARD.read_text())
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "bad.json").write_text(json.dumps({**load_card(ZOO_CARD), "eps": "8|255"}))
    checked = dict(check_card_files([tmp_path]))
    assert checked[good] == [] and len(checked) == 3
    assert any("field $.eps" in p for p in checked[tmp_path / "bad.json"])
    assert checked[tmp_path / "broken.json"][0].startswith(str(tmp_path / "broken.json"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CardError, match="no card files found"):
        check_card_files([tmp_path / "empty"])


def test_score_source_takes_a_source_string_as_its_model(tmp_path):
    """score_source / evaluate_source accept the model as ModelSpec or as its source string."""
    from rb_crossclass import ModelSpec, score_source

    assert ModelSpec.of("zoo:X") == ModelSpec(source="zoo:X")
    spec = ModelSpec(source="timm:resnet18", seed=3)
    assert ModelSpec.of(spec) is spec
    with pytest.raises(TypeError, match="ModelSpec or a source string"):
        ModelSpec.of(3)
    compute = ComputeSettings(device="cpu")
    by_name = score_source(TINY, "sample:cifar10", tmp_path / "a", n_examples=8, attack="none",
                           compute=compute, progress=False)
    by_spec = score_source(ModelSpec(source=TINY), "sample:cifar10", tmp_path / "b", n_examples=8,
                           attack="none", compute=compute, progress=False)
    assert by_name.result.clean_cas == by_spec.result.clean_cas


def test_card_table_shows_per_class_intervals_as_pairs_with_missing_classes():
    """A per-class interval list with classes that had no points reads as pairs and the missing
    mark, not as a flattened run of numbers (a new-user trial saw '0, 0.7935, —, —, 0, ...')."""
    from rb_crossclass.cards.table import format_value
    from rb_crossclass.core import MISSING

    value = [[0.0, 0.7934], None, [0.1, 0.5]] + [None] * 9
    assert format_value(value) == f"0-0.7934, {MISSING}, 0.1-0.5, " + ", ".join([MISSING] * 7) + \
        ", ... (12 intervals)"
    assert format_value([[1, 2, 3], [4, 5, 6]]) == "2 lists (--json to see them)"
    assert format_value([None, None]) == f"{MISSING}, {MISSING}"
