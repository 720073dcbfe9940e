"""Card schema: official RobustBench cards round-trip, malformed cards fail naming file and field."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rb_crossclass import cards
from rb_crossclass.cards import CardError, load_card, validate_card, write_card
from rb_crossclass.cli import main
from rb_crossclass.core.provenance import now_iso

from conftest import OFFICIAL_CARDS

needs_cards = pytest.mark.skipif(
    OFFICIAL_CARDS is None or not OFFICIAL_CARDS.is_dir(),
    reason="../shared/robustbench/model_info (official cards) is not present",
)

STANDARD = {
    "link": "https://github.com/RobustBench/robustbench/",
    "name": "Standardly trained model",
    "authors": "",
    "additional_data": False,
    "number_forward_passes": 1,
    "dataset": "cifar10",
    "venue": "N/A",
    "architecture": "WideResNet-28-10",
    "eps": "8/255",
    "clean_acc": "94.78",
    "reported": "0.0",
    "autoattack_acc": "0.0",
}


def _score_dict(k: int = 3) -> dict:
    m = [[1.0 if i == j else 0.25 * (i + j) / k for j in range(k)] for i in range(k)]
    m[k - 1] = [float("nan")] * k  # an empty class: NaN row
    return {
        "cas": 1.5, "normalized_cas": 0.25, "fsi": 0.1, "clean_cas": 2.0, "clean_normalized_cas": 0.3,
        "clean_fsi": 0.2, "matrix": m, "clean_matrix": m, "class_names": [f"c{i}" for i in range(k)],
        "n_examples": 12, "per_class_counts": [6, 6, 0], "attack": {"name": "pgd", "steps": 20},
    }


def _our_card(**over) -> dict:
    evaluation = {
        "n_examples": 12, "threat_model": "Linf", "eps": 8 / 255, "autoattack_version": "standard",
        "seed": 0, "batch_size": 500, "date": now_iso(), "package_versions": {"torch": "2"},
        "seconds": 1.5,
    }
    kw = dict(name="tiny", dataset="cifar10", threat_model="Linf", eps=8 / 255, clean_accuracy=0.5,
              robust_accuracy=1 / 3, cross_class=cards.cross_class_block(_score_dict(), "autoattack"),
              evaluation=evaluation)
    kw.update(over)
    return cards.card_from_results(**kw)


@needs_cards
def test_every_official_card_loads_and_writes_back_unchanged(tmp_path):
    files = sorted(OFFICIAL_CARDS.rglob("*.json"))
    assert len(files) >= 230
    corruptions = 0
    for f in files:
        original = json.loads(f.read_text(encoding="utf-8"))
        card = load_card(f)
        out = tmp_path / f.relative_to(OFFICIAL_CARDS)
        write_card(card, out)
        back = json.loads(out.read_text(encoding="utf-8"))
        assert cards.normalized_json(back) == cards.normalized_json(original), f
        assert list(back) == list(original), f"key order changed in {f}"
        if "corruptions_acc" in card:
            corruptions += 1
    assert corruptions >= 40  # corruptions cards (eps null, corruptions_acc) validate too


@needs_cards
def test_canonical_official_files_are_reproduced_byte_for_byte(tmp_path):
    same = 0
    for f in sorted(OFFICIAL_CARDS.rglob("*.json")):
        raw = f.read_text(encoding="utf-8")
        if raw.rstrip("\n") == cards.dumps_card(json.loads(raw)).rstrip("\n"):
            same += 1
    assert same >= 200  # the rest differ only in whitespace style


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda c: c.pop("clean_acc"), "$.clean_acc", "missing"),
        (lambda c: c.update(additional_data="no"), "$.additional_data", "wrong type"),
        (lambda c: c.update(number_forward_passes="1"), "$.number_forward_passes", "wrong type"),
        (lambda c: c.update(clean_acc=94.78), "$.clean_acc", "wrong type"),
        (lambda c: c.update(eps="8/255 "), "$.eps", "epsilon"),
        (lambda c: c.update(eps="eight"), "$.eps", "epsilon"),
        (lambda c: c.update(eps=0.031), "$.eps", "epsilon"),
        (lambda c: c.update(eps=None), "$.eps", ""),  # AutoAttack cards need an eps
        (lambda c: c.pop("autoattack_acc"), "$.autoattack_acc", "corruptions_acc"),
        (lambda c: c.update(clean_acc="104.2"), "$.clean_acc", "percentage"),
        (lambda c: c.update(extra_key=1), "$.extra_key", "unknown key"),
    ],
)
def test_malformed_cards_name_file_and_field(tmp_path, change, field, words):
    card = dict(STANDARD)
    change(card)
    path = tmp_path / "Bad.json"
    path.write_text(json.dumps(card))
    with pytest.raises(CardError) as info:
        load_card(path)
    msg = str(info.value)
    assert str(path) in msg and f"field {field}" in msg and words in msg


def test_non_json_and_nan_are_clear_errors(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"name": "x",')
    with pytest.raises(CardError, match=r"broken\.json: field \$: not valid JSON"):
        load_card(path)
    path.write_text(json.dumps(STANDARD).replace('"0.0"}', '"0.0", "x_score": NaN}'))
    with pytest.raises(CardError, match="NaN is not valid JSON"):
        load_card(path)
    with pytest.raises(CardError, match="not found"):
        load_card(tmp_path / "missing.json")
    with pytest.raises(CardError, match="JSON object"):
        validate_card([1, 2], "list.json")


def test_extension_keys_are_allowed():
    validate_card({**STANDARD, "x_note": {"anything": [1]}})


def test_card_from_results_uses_robustbench_types_and_validates(tmp_path):
    card = _our_card()
    assert card["clean_acc"] == "50.00" and card["autoattack_acc"] == "33.33" and card["eps"] == "8/255"
    assert list(card)[:9] == list(STANDARD)[:9]
    assert list(card)[-2:] == ["cross_class", "evaluation"]
    cc = card["cross_class"]
    assert cc["matrix"][2] == [None, None, None]  # NaN (empty class) -> null
    assert cc["attack"] == {"name": "autoattack"}
    path = tmp_path / "sub" / "tiny.json"
    write_card(card, path)
    assert load_card(path) == card
    assert [p.name for p in path.parent.iterdir()] == ["tiny.json"]  # no temp file left
    # cards we write carry two decimals: a hand-edited '50.0' is rejected
    with pytest.raises(CardError, match=r"\$\.clean_acc.*two decimals"):
        validate_card({**card, "clean_acc": "50.0"}, "ours.json")


def test_card_from_results_prefills_from_an_official_card():
    base = {**STANDARD, "footnote": "<b>html</b>", "external": "1.00", "reported": "12.5"}
    card = _our_card(base=base, name="Standardly trained model")
    assert card["venue"] == "N/A" and card["footnote"] == "<b>html</b>"
    assert card["reported"] == "12.5"
    assert "external" not in card  # an official external number does not describe our evaluation
    assert card["clean_acc"] == "50.00"


def test_invalid_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "card.json"
    write_card(STANDARD, path)
    before = path.read_bytes()
    with pytest.raises(CardError, match=r"card\.json: field \$\.number_forward_passes"):
        write_card({**STANDARD, "number_forward_passes": 0}, path)
    assert path.read_bytes() == before
    with pytest.raises(CardError, match="NaN"):
        cards.dumps_card({**STANDARD, "x_v": math.nan})


def test_matrix_shape_is_checked_against_class_names():
    card = _our_card()
    card["cross_class"]["matrix"] = card["cross_class"]["matrix"][:2]
    with pytest.raises(CardError, match=r"\$\.cross_class\.matrix: has 2 rows but class_names has 3"):
        validate_card(card, "m.json")
    card = _our_card()
    card["cross_class"]["clean_matrix"][1] = [0.1]
    with pytest.raises(CardError, match=r"\$\.cross_class\.clean_matrix\[1\]: has 1 entries"):
        validate_card(card, "m.json")
    card = _our_card()
    card["cross_class"]["matrix"][0][1] = 1.5
    with pytest.raises(CardError, match=r"\$\.cross_class\.matrix\[0\]\[1\]"):
        validate_card(card, "m.json")


def test_training_block_requires_a_sha256():
    training = {"recipe": "pgd_at", "config": {"epochs": 2}, "epochs": 2, "best_epoch": 1,
                "checkpoint_sha256": "ab" * 32}
    _our_card(training=training)
    with pytest.raises(CardError, match=r"\$\.training\.checkpoint_sha256"):
        _our_card(training={**training, "checkpoint_sha256": "xyz"})
    with pytest.raises(CardError, match=r"\$\.training\.recipe: missing"):
        _our_card(training={k: v for k, v in training.items() if k != "recipe"})


def test_format_helpers():
    assert cards.format_percent(0.5342) == "53.42" and cards.format_percent(1.0) == "100.00"
    with pytest.raises(ValueError):
        cards.format_percent(53.4)


def test_schema_file_is_shipped_and_is_a_valid_json_schema():
    import jsonschema

    schema = cards.card_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert Path(cards.schema_path()).is_file()
    assert set(schema["required"]) <= set(STANDARD)


def test_cli_validate_and_show(tmp_path, capsys):
    good = tmp_path / "cards" / "good.json"
    write_card(_our_card(), good)
    bad = tmp_path / "cards" / "bad.json"
    bad.write_text(json.dumps({**STANDARD, "eps": "8|255"}))
    assert main(["card", "validate", str(good)]) == 0
    assert main(["card", "validate", str(tmp_path / "cards")]) == 1
    out = capsys.readouterr().out
    assert f"INVALID {bad}: field $.eps" in out and f"ok      {good}" in out
    assert main(["card", "show", str(good)]) == 0
    shown = capsys.readouterr().out
    assert "33.33 %" in shown and "cas" in shown and "attribution matrix" in shown
    assert main(["card", "show", str(bad)]) == 1
    assert "field $.eps" in capsys.readouterr().err
    assert main(["card", "show", "--json", str(good)]) == 0
    assert json.loads(capsys.readouterr().out) == load_card(good)


ROOT_ZOO_CARD = (Path(__file__).resolve().parent.parent / "model_zoo" / "cifar10" / "Linf"
                 / "RBCrossclass2025CPU_PGD-AT.json")


def test_show_gives_the_cas_interval_and_the_aa_examples_cas(capsys):
    card = load_card(ROOT_ZOO_CARD)
    assert main(["card", "show", str(ROOT_ZOO_CARD)]) == 0
    shown = capsys.readouterr().out
    low, high = card["cross_class"]["intervals"]["cas"]
    assert f"(95% CI {low:.4g}-{high:.4g})" in shown
    assert f"cas (AA examples)    {card['cross_class']['autoattack']['cas']:.4g}" in shown
    assert "forward passes   1" in shown and "reported acc     " in shown


def test_show_counts_the_packed_per_point_flags(tmp_path, capsys):
    """evaluation.point_flags (hex, cards/flags.py) is shown as counts, not as hex digits."""
    from rb_crossclass.cards import write_card
    from rb_crossclass.cards.flags import pack_flags

    card = load_card(ROOT_ZOO_CARD)
    n = card["evaluation"]["n_examples"]
    flags = [i % 3 == 0 for i in range(n)]
    card["evaluation"]["point_flags"] = {"clean": pack_flags(flags), "robust": pack_flags([False] * n)}
    write_card(card, tmp_path / "c.json")
    assert main(["card", "show", str(tmp_path / "c.json")]) == 0
    shown = capsys.readouterr().out
    assert f"{sum(flags)} of {n} points correct" in shown and f"0 of {n} points correct" in shown
    assert pack_flags(flags) not in shown


def test_the_schemas_threat_models_are_core_threats():
    """The card schema's threat models are core.threat's (RobustBench's): L1 is refused, a 3D common
    corruptions card (ranked by corruptions_acc_3d, no corruptions_acc) validates."""
    from rb_crossclass.core.threat import THREAT_MODELS, accuracy_field

    schema = cards.card_schema()
    assert schema["$defs"]["evaluation"]["properties"]["threat_model"]["enum"] == list(THREAT_MODELS)
    required = {tuple(b["required"]) for b in schema["anyOf"] if "not" not in b}
    assert required == {(accuracy_field(tm),) for tm in THREAT_MODELS}

    card = _our_card()
    card["evaluation"]["threat_model"] = "L1"
    with pytest.raises(CardError, match=r"threat_model"):
        validate_card(card)
    three_d = {k: v for k, v in STANDARD.items() if k != "autoattack_acc"}
    three_d.update(dataset="imagenet", eps=None, corruptions_acc_3d="54.32", corruptions_mce_3d="61.00")
    validate_card(three_d)
    with pytest.raises(CardError, match="corruptions_acc_3d"):
        validate_card({k: v for k, v in three_d.items() if k != "corruptions_acc_3d"})


def test_every_robust_accuracy_of_the_schema_says_under_which_attack():
    """`robust_accuracy` is the accuracy under a block's own attack (PGD in cross_class, AutoAttack's
    examples in cross_class.autoattack): the schema says so wherever the name appears, so one name
    is not read as two ideas (RobustBench's headline number is autoattack_acc)."""
    from rb_crossclass.cards import card_schema

    found = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "robust_accuracy" and isinstance(value, dict) and "properties" not in value:
                    found.append((path, value.get("description", "")))
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for item in node:
                walk(item, path)

    walk(card_schema(), "")
    assert len(found) >= 4
    for path, text in found:
        assert "attack" in text or "PGD" in text, f"{path}: robust_accuracy without its attack"
