"""Leaderboard: RobustBench's order on the official cards, merging, sanitizing, atomic builds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from rb_crossclass.leaderboard import (
    LeaderboardError,
    build_leaderboard,
    build_rows,
    card_paths,
)
from rb_crossclass.leaderboard.sanitize import safe_href, sanitize_html, strip_html

from conftest import OFFICIAL_CARDS

needs_official = pytest.mark.skipif(
    OFFICIAL_CARDS is None or not OFFICIAL_CARDS.is_dir(),
    reason="../shared/robustbench/model_info (official RobustBench cards) is not present",
)


# --------------------------------------------------------------------------- card helpers
def official_card(model_id: str, aa: str, clean: str = "80.00", **extra) -> dict:
    card = {
        "link": f"https://arxiv.org/abs/{len(model_id):04d}.00001", "name": f"Paper {model_id}",
        "authors": "A. Author", "additional_data": False, "number_forward_passes": 1,
        "dataset": "cifar10", "venue": "ICML 2024", "architecture": "WideResNet-28-10",
        "eps": "8/255", "clean_acc": clean, "reported": aa, "autoattack_acc": aa,
    }
    card.update(extra)
    return card


def measured_card(model_id: str, aa: str, cas: float, fsi: float = 0.3, clean: str = "60.00",
                  threat_model: str = "Linf", **extra) -> dict:
    card = official_card(model_id, aa, clean, **extra)
    card["name"] = f"Our {model_id}"
    card["cross_class"] = {
        "cas": cas, "normalized_cas": cas / 90.0, "fsi": fsi,
        "matrix": [[1.0, 0.5], [0.5, 1.0]], "class_names": ["a", "b"],
        "attack": {"name": "pgd", "norm": "Linf", "eps": 8 / 255, "steps": 20, "step_size": 2 / 255},
        "n_examples": 500,
    }
    card["evaluation"] = {
        "n_examples": 500, "threat_model": threat_model, "autoattack_version": "standard", "seed": 0,
        "batch_size": 250, "date": "2025-01-01T00:00:00+00:00", "package_versions": {"torch": "2"},
        "seconds": 1.0,
    }
    return card


def write(folder: Path, name: str, card: dict, layout: bool = True) -> Path:
    target = folder / "cifar10" / "Linf" if layout else folder
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"{name}.json"
    path.write_text(json.dumps(card, indent=2), encoding="utf-8")
    return path


def ids(rows) -> list[str]:
    return [r["model_id"] for r in rows]


# --------------------------------------------------------------------------- RobustBench order
def robustbench_order(folder: Path, monkeypatch) -> list[dict]:
    """The card dicts in the order RobustBench's own ``generate_leaderboard`` puts them.

    RobustBench sorts ``Path.glob`` results (file-system order) with a stable sort; the glob is
    made to yield sorted names, the tie order our leaderboard documents. The jinja template
    (not shipped in the wheel) is replaced by one that captures the sorted models.
    """
    from rb_crossclass.compat import import_robustbench

    import_robustbench()
    import robustbench.leaderboard.template as template

    captured: dict = {}

    class CapturingTemplate:
        def render(self, **kwargs):
            captured.update(kwargs)
            return ""

    class CapturingEnvironment:
        def __init__(self, *args, **kwargs):
            pass

        def get_template(self, name):
            return CapturingTemplate()

    real_glob = Path.glob
    monkeypatch.setattr(template, "Environment", CapturingEnvironment)
    monkeypatch.setattr(template, "PackageLoader", lambda *a, **k: None)
    monkeypatch.setattr(Path, "glob", lambda self, pattern: iter(sorted(real_glob(self, pattern))))
    template.generate_leaderboard("cifar10", "Linf", models_folder=str(folder))
    monkeypatch.setattr(Path, "glob", real_glob)
    return captured["models"]


@needs_official
def test_official_cifar10_linf_order_equals_robustbench(monkeypatch, capsys):
    expected = robustbench_order(OFFICIAL_CARDS, monkeypatch)
    capsys.readouterr()
    rows = build_rows([OFFICIAL_CARDS], "cifar10", "Linf")
    assert len(rows) == len(expected) == 99
    paths = {p.stem: p for p, _ in card_paths([OFFICIAL_CARDS], "cifar10", "Linf")}
    ours = [json.loads(paths[r["model_id"]].read_text(encoding="utf-8")) for r in rows]
    assert ours == expected
    # the tie rule matters here: these official cards share their sort key
    keys = [r["best_known_acc"] for r in rows]
    assert len(set(keys)) < len(keys)
    assert keys == sorted(keys, reverse=True)
    assert ids(rows)[:2] == ["Bartoldson2024Adversarial_WRN-94-16", "Amini2024MeanSparse_S-WRN-94-16"]


def test_order_uses_external_first_and_file_order_for_ties(tmp_path):
    write(tmp_path, "B_tie", official_card("B_tie", "50.00"))
    write(tmp_path, "A_tie", official_card("A_tie", "50.00"))
    write(tmp_path, "C_ext", official_card("C_ext", "60.00", external="40.00"))
    write(tmp_path, "D_top", official_card("D_top", "55.00"))
    rows = build_rows([tmp_path], "cifar10", "Linf")
    assert ids(rows) == ["D_top", "A_tie", "B_tie", "C_ext"]  # ties: sorted file names
    assert [r["rank"] for r in rows] == [1, 2, 3, 4]
    assert rows[3]["best_known_acc"] == 40.0 and rows[3]["autoattack_acc"] == 60.0


# --------------------------------------------------------------------------- merging
def test_merge_attaches_measured_blocks_without_duplicates(tmp_path):
    official, ours = tmp_path / "official", tmp_path / "ours"
    write(official, "Shared2024", official_card("Shared2024", "55.00", clean="88.00"))
    write(official, "OnlyOfficial", official_card("OnlyOfficial", "45.00"))
    write(ours, "Shared2024", measured_card("Shared2024", "51.20", cas=12.5, clean="87.00"))
    write(ours, "OnlyOurs", measured_card("OnlyOurs", "30.00", cas=20.0))
    rows = build_rows([official, ours], "cifar10", "Linf")
    assert ids(rows) == ["Shared2024", "OnlyOfficial", "OnlyOurs"]
    shared = rows[0]
    assert shared["official"] and shared["measured"]
    assert shared["name"] == "Paper Shared2024"  # official keys prevail
    assert shared["autoattack_acc"] == 55.0 and shared["clean_acc"] == 88.0
    assert shared["cas"] == 12.5 and shared["fsi"] == 0.3
    assert len(shared["card_files"]) == 2
    assert not rows[1]["measured"] and rows[1]["cas"] is None
    assert rows[2]["measured"] and not rows[2]["official"]
    # order of the folders does not change which keys win
    assert build_rows([ours, official], "cifar10", "Linf")[0]["name"] == "Paper Shared2024"


def test_two_measured_cards_for_one_model_are_an_error(tmp_path):
    write(tmp_path / "a", "M", measured_card("M", "30.00", cas=1.0))
    write(tmp_path / "b", "M", measured_card("M", "31.00", cas=2.0))
    with pytest.raises(LeaderboardError, match="more than one card"):
        build_rows([tmp_path / "a", tmp_path / "b"], "cifar10", "Linf")


def test_flat_folder_is_filtered_by_dataset_and_threat_model(tmp_path):
    write(tmp_path / "flat", "Linf_model", measured_card("Linf_model", "30.00", cas=3.0), layout=False)
    write(tmp_path / "flat", "L2_model", measured_card("L2_model", "60.00", cas=3.0, threat_model="L2",
                                                       eps="0.5"), layout=False)
    write(tmp_path / "flat", "C100", measured_card("C100", "20.00", cas=3.0, dataset="cifar100"),
          layout=False)
    (tmp_path / "flat" / "eval.json").write_text('{"not": "a card"}')  # evaluate's own output
    assert ids(build_rows([tmp_path / "flat"], "cifar10", "Linf")) == ["Linf_model"]
    assert ids(build_rows([tmp_path / "flat"], "cifar10", "L2")) == ["L2_model"]


def test_sort_by_cas_puts_missing_last(tmp_path):
    write(tmp_path, "Off", official_card("Off", "70.00", clean="95.00"))
    write(tmp_path, "Low", measured_card("Low", "40.00", cas=5.0, fsi=0.9))
    write(tmp_path, "High", measured_card("High", "20.00", cas=30.0, fsi=0.1))
    assert ids(build_rows([tmp_path], "cifar10", "Linf", "cas")) == ["High", "Low", "Off"]
    assert ids(build_rows([tmp_path], "cifar10", "Linf", "fsi")) == ["Low", "High", "Off"]
    assert ids(build_rows([tmp_path], "cifar10", "Linf", "clean")) == ["Off", "High", "Low"]
    with pytest.raises(LeaderboardError, match="--sort-by"):
        build_rows([tmp_path], "cifar10", "Linf", "bogus")


# --------------------------------------------------------------------------- outputs
def test_build_writes_all_outputs(tmp_path):
    cards = tmp_path / "cards"
    write(cards, "Off", official_card("Off", "70.00", venue="GitHub,<br>Oct 2019",
                                      footnote='See <a href="https://example.org/x">this</a>.'))
    write(cards, "Ours", measured_card("Ours", "40.00", cas=25.0))
    result = build_leaderboard([cards], "cifar10", "Linf", tmp_path / "out")
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted(result.files)
    assert result.n_entries == 2 and result.n_measured == 1 and result.n_plotted == 1
    data = json.loads((out / "leaderboard.json").read_text())
    assert [e["model_id"] for e in data["entries"]] == ["Off", "Ours"]
    assert data["composition"][0]["model_id"] == "Ours"
    page = (out / "index.html").read_text()
    assert "GitHub,<br>Oct 2019" in page
    assert '<a href="https://example.org/x" rel="noopener noreferrer">this</a>' in page
    assert "https://" not in page.split("<body>")[0].replace("https://arxiv", "")  # no CDN in head
    assert 'id="composition"' in page and "25.00" in page
    md = (out / "README.md").read_text()
    assert "| 2 | B1 | Ours |" in md and "GitHub, Oct 2019" in md and "—" in md  # B: our 500-point group
    assert (out / "cas_vs_robust.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_escaping_of_card_fields(tmp_path):
    evil = official_card(
        "Evil", "10.00", name="<script>alert(1)</script>", link="javascript:alert(1)",
        architecture='<img src=x onerror="alert(2)">', authors="</td><script>alert(3)</script>",
        venue='<a href="javascript:alert(4)" onclick="alert(5)">v</a><svg onload=alert(6)>',
        footnote="<iframe src=https://evil.example></iframe><b onmouseover=alert(7)>bold</b>",
    )
    write(tmp_path / "c", "Evil", evil)
    build_leaderboard([tmp_path / "c"], "cifar10", "Linf", tmp_path / "out")
    page = (tmp_path / "out" / "index.html").read_text()
    body = page.split("<body>")[1]
    assert "<script>alert" not in body and "<img src=x" not in body and "<svg" not in body
    assert "javascript:" not in body and "<iframe" not in body and "onmouseover" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<b>bold</b>" in body
    md = (tmp_path / "out" / "README.md").read_text()
    assert "<script>" not in md and "javascript:" not in md


def test_empty_plot_says_so(tmp_path):
    write(tmp_path / "c", "Off", official_card("Off", "70.00"))
    result = build_leaderboard([tmp_path / "c"], "cifar10", "Linf", tmp_path / "out")
    assert result.n_plotted == 0
    assert "composition-empty" in (tmp_path / "out" / "index.html").read_text()


# --------------------------------------------------------------------------- atomic builds
def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("bad", [
    "{not json",
    json.dumps(official_card("Bad", "abc")),  # autoattack_acc not a number
    json.dumps({k: v for k, v in official_card("Bad", "40.00").items() if k != "name"}),
])
def test_bad_card_aborts_and_keeps_previous_output(tmp_path, bad):
    cards, out = tmp_path / "cards", tmp_path / "out"
    write(cards, "Good", official_card("Good", "50.00"))
    build_leaderboard([cards], "cifar10", "Linf", out)
    before = snapshot(out)
    write(cards, "Newer", official_card("Newer", "60.00"))
    bad_path = cards / "cifar10" / "Linf" / "Bad.json"
    bad_path.write_text(bad, encoding="utf-8")
    from rb_crossclass.core.errors import RBCrossclassError

    with pytest.raises(RBCrossclassError) as info:
        build_leaderboard([cards], "cifar10", "Linf", out)
    assert "Bad.json" in str(info.value)
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cards", "out"]  # no temp folders left
    bad_path.unlink()
    build_leaderboard([cards], "cifar10", "Linf", out)
    assert json.loads((out / "leaderboard.json").read_text())["entries"][0]["model_id"] == "Newer"


def test_refuses_to_replace_a_foreign_folder(tmp_path):
    write(tmp_path / "cards", "Good", official_card("Good", "50.00"))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "precious.txt").write_text("keep me")
    with pytest.raises(LeaderboardError, match="refusing"):
        build_leaderboard([tmp_path / "cards"], "cifar10", "Linf", tmp_path / "out")
    assert (tmp_path / "out" / "precious.txt").read_text() == "keep me"


def test_cli_leaderboard(tmp_path, capsys):
    from rb_crossclass.cli import main

    write(tmp_path / "cards", "Good", official_card("Good", "50.00"))
    assert main(["leaderboard", "--cards", str(tmp_path / "cards"), "--out", str(tmp_path / "o")]) == 0
    assert "1 entries" in capsys.readouterr().out
    (tmp_path / "cards" / "cifar10" / "Linf" / "Broken.json").write_text("[]")
    assert main(["leaderboard", "--cards", str(tmp_path / "cards"), "--out", str(tmp_path / "o")]) == 1
    assert "Broken.json" in capsys.readouterr().err


# --------------------------------------------------------------------------- sanitizer
@pytest.mark.parametrize("text, expected", [
    ("GitHub,<br>Oct 2019", "GitHub,<br>Oct 2019"),
    ("a<br/>b", "a<br>b"),
    ('<a href="https://x.org/p?a=1&amp;b=2">t</a>', '<a href="https://x.org/p?a=1&amp;b=2" '
                                                    'rel="noopener noreferrer">t</a>'),
    ('<a href="javascript:alert(1)">t</a>', "t"),
    ('<a href="java\tscript:alert(1)">t</a>', "t"),
    ('<a href="&#106;avascript:alert(1)">t</a>', "t"),
    ('<a href="//evil.org">t</a>', "t"),
    ('<a href="https://x.org" onclick="alert(1)" style="x">t</a>',
     '<a href="https://x.org" rel="noopener noreferrer">t</a>'),
    ("<script>alert(1)</script>after", "after"),
    ("<style>body{}</style><em>e</em>", "<em>e</em>"),
    ('<img src=x onerror="alert(1)">', ""),
    ("<b><i>x</b> y", "<b><i>x</i></b><i> y</i>"),  # as a browser parses it (HTML5 adoption agency)
    ("</em>stray <strong>open", "stray <strong>open</strong>"),
    ("1 < 2 & \\(\\ell_\\infty\\)", "1 &lt; 2 &amp; \\(\\ell_\\infty\\)"),
    ('<EM onmouseover="x">E</EM>', "<em>E</em>"),
    ("<!-- c --><b>k</b>", "<b>k</b>"),
])
def test_sanitize_html(text, expected):
    assert sanitize_html(text) == expected


def test_safe_href_and_strip_html():
    assert safe_href("https://arxiv.org/abs/1") == "https://arxiv.org/abs/1"
    assert safe_href("data:text/html,x") is None and safe_href("/relative") is None
    assert strip_html('GitHub,<br>Oct <a href="https://x.org">2019</a>') == "GitHub, Oct 2019"


@needs_official
def test_every_official_footnote_and_venue_sanitizes_to_balanced_markup():
    from html.parser import HTMLParser

    class Tags(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags: list[str] = []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            assert all(not a.startswith("on") for a, _ in attrs)

    for path in sorted(OFFICIAL_CARDS.glob("*/*/*.json")):
        card = json.loads(path.read_text(encoding="utf-8"))
        for key in ("footnote", "venue"):
            clean = sanitize_html(card.get(key))
            parser = Tags()
            parser.feed(clean)
            assert set(parser.tags) <= {"a", "br", "em", "i", "strong", "b"}, (path, key)
            assert strip_html(card.get(key)).strip() or not (card.get(key) or "").strip()


def test_copy_of_official_folder_builds(tmp_path):
    if OFFICIAL_CARDS is None or not OFFICIAL_CARDS.is_dir():
        pytest.skip("official cards not present")
    shutil.copytree(OFFICIAL_CARDS / "cifar10" / "L2", tmp_path / "m" / "cifar10" / "L2")
    result = build_leaderboard([tmp_path / "m"], "cifar10", "L2", tmp_path / "out")
    assert result.n_entries == 21 and result.n_official == 21


REPO = Path(__file__).resolve().parent.parent
PUBLISHED = REPO / "leaderboards" / "cifar10_Linf"


@needs_official
@pytest.mark.skipif(not (PUBLISHED / "leaderboard.json").is_file(),
                    reason="leaderboards/cifar10_Linf is not built")
def test_published_leaderboard_is_current():
    """leaderboards/cifar10_Linf equals a fresh build from the official cards and model_zoo/
    (rebuild with `make leaderboard` after changing a card)."""
    published = json.loads((PUBLISHED / "leaderboard.json").read_text(encoding="utf-8"))
    rows = build_rows([OFFICIAL_CARDS, REPO / "model_zoo"], "cifar10", "Linf")

    def strip(entries):
        return [{k: v for k, v in e.items() if k != "card_files"} for e in entries]

    assert strip(published["entries"]) == strip(rows)
    assert sum(e["measured"] for e in rows) == len(list((REPO / "model_zoo").glob("cifar10/Linf/*.json")))


def test_cas_column_is_the_pgd_protocol_and_other_cas_only_labelled(tmp_path):
    cards = tmp_path / "cards"
    legacy = measured_card("Legacy", "30.00", cas=9.0)  # a card whose top level holds AA examples
    legacy["cross_class"]["attack"] = {"name": "autoattack"}
    write(cards, "Legacy", legacy)
    both = measured_card("Both", "31.00", cas=12.0)
    both["cross_class"]["autoattack"] = {**measured_card("x", "1.00", cas=7.0)["cross_class"],
                                         "attack": {"name": "autoattack"}}
    write(cards, "Both", both)
    rows = {r["model_id"]: r for r in build_rows([cards], "cifar10", "Linf")}
    assert rows["Legacy"]["cas"] is None and rows["Legacy"]["cas_autoattack"] == 9.0
    assert rows["Both"]["cas"] == 12.0 and rows["Both"]["cas_autoattack"] == 7.0
    assert rows["Both"]["cas_protocol"] == "PGD-20, Linf eps 8/255, step 2/255"


def test_training_cards_stay_off_the_autoattack_ranking(tmp_path):
    from rb_crossclass.leaderboard import build_leaderboard

    cards = tmp_path / "cards"
    trained = measured_card("Trained", "40.00", cas=10.0)
    del trained["autoattack_acc"], trained["evaluation"]
    trained["training"] = {"recipe": "pgd_at", "config": {}, "epochs": 2, "best_epoch": 2,
                           "checkpoint_sha256": "0" * 64}
    write(cards, "Trained", trained)
    write(cards, "Evaluated", measured_card("Evaluated", "20.00", cas=5.0))
    result = build_leaderboard([cards], "cifar10", "Linf", tmp_path / "b")
    assert result.n_entries == 1 and any("Trained.json: skipped" in w for w in result.warnings)

    # scores only beside an official card of the same model: ranked by the official number, with our CAS
    official = tmp_path / "official"
    write(official, "Trained", {k: v for k, v in measured_card("Trained", "33.00", cas=1.0).items()
                                if k not in ("cross_class", "evaluation")})
    result = build_leaderboard([official, cards], "cifar10", "Linf", tmp_path / "b2")
    board = json.loads((tmp_path / "b2" / "leaderboard.json").read_text())
    rows = {r["model_id"]: r for r in board["entries"]}
    assert result.n_entries == 2 and not any("Trained.json: skipped" in w for w in result.warnings)
    assert rows["Trained"]["board_acc"] == 33.0 and rows["Trained"]["cas"] == 10.0


def test_cli_leaderboard_figure_format_and_dpi(tmp_path, capsys):
    from rb_crossclass.cli import main

    write(tmp_path / "cards", "Ours", measured_card("Ours", "40.00", cas=25.0))
    args = ["leaderboard", "--cards", str(tmp_path / "cards"), "--out", str(tmp_path / "o")]
    assert main([*args, "--format", "pdf", "--dpi", "150"]) == 0
    out = tmp_path / "o"
    assert (out / "cas_vs_robust.pdf").read_bytes()[:5] == b"%PDF-"
    assert (out / "cas_vs_robust.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the page's image
    assert "cas_vs_robust.pdf" in capsys.readouterr().out
    assert main([*args, "--format", "svg"]) == 0  # a board with a PDF copy is still ours to replace
    assert (out / "cas_vs_robust.svg").read_text().lstrip().startswith("<?xml")
    assert not (out / "cas_vs_robust.pdf").exists()
    assert main([*args, "--dpi", "5"]) == 1 and "--dpi" in capsys.readouterr().err


PUBLISHED_MNIST = REPO / "leaderboards" / "mnist_Linf"
MNIST_CARDS = REPO / "leaderboards" / "cards"
# ../shared/checkpoints/README.md, measured there: clean accuracy on all 10,000 MNIST test images
# and PGD-40 (eps 0.3, step 0.01, one random start) on the first 1,000.
MNIST_REFERENCE = {"Ding2019Advertorch_LeNet5_PGD": (98.64, 92.7),
                   "Ding2019Advertorch_LeNet5_Clean": (98.89, 0.0),
                   "Wong2020Fast_PGD_MNIST": (98.99, 91.6)}


def test_published_mnist_board_is_current_and_sane():
    """leaderboards/mnist_Linf equals a fresh build from leaderboards/cards (`make leaderboard`);
    its three published models were measured by us with AutoAttack on >= 500 points, each card
    names its weights by sha256, AutoAttack (the stronger attack) is at or below the PGD-40 of the
    checkpoints' README, and clean accuracy on the first N points agrees with the 10k figure."""
    published = json.loads((PUBLISHED_MNIST / "leaderboard.json").read_text(encoding="utf-8"))
    rows = build_rows([MNIST_CARDS], "mnist", "Linf")

    def strip(entries):
        return [{k: v for k, v in e.items() if k != "card_files"} for e in entries]

    assert strip(published["entries"]) == strip(rows)
    assert {r["model_id"] for r in rows} == set(MNIST_REFERENCE)
    manifest = yaml.safe_load((REPO / "leaderboards" / "manifests" / "mnist_Linf.yaml").read_text())
    sha = {m["name"]: m["sha256"] for m in manifest["models"]}
    for name, (clean_10k, pgd40) in MNIST_REFERENCE.items():
        card = json.loads((MNIST_CARDS / "mnist" / "Linf" / f"{name}.json").read_text())
        ev = card["evaluation"]
        assert ev["n_examples"] >= 500 and ev["autoattack_version"] == "standard" and card["eps"] == "0.3"
        assert card["x_weights"]["sha256"] == sha[name]
        assert float(card["autoattack_acc"]) <= pgd40
        low, high = ev["intervals"]["clean_accuracy"]
        assert low - 0.01 <= clean_10k / 100 <= high + 0.01, (name, low, high)
        assert card["cross_class"]["attack"]["name"] == "pgd" and card["cross_class"]["attack"]["steps"] == 20
        assert len(card["evaluation"]["per_class"]["robust_accuracy"]) == 10
    for ext in ("README.md", "index.html", "leaderboard.json"):
        assert (PUBLISHED_MNIST / ext).is_file()


def test_markdown_board_marks_unreliable_ties_and_correlations(tmp_path):
    from rb_crossclass.crossclass.per_class import per_class_block
    from rb_crossclass.leaderboard import build_leaderboard

    cards = tmp_path / "cards"
    for name, aa, cas, robust, unreliable in (("Warned", "40.00", 9.0, [3, 1], True),
                                              ("Tied", "30.00", 5.0, [0, 0], False),
                                              ("Third", "20.00", 1.0, [2, 0], False)):
        card = measured_card(name, aa, cas=cas)
        card["evaluation"]["per_class"] = per_class_block([5, 5], [5, 5], robust, ["a", "b"])
        if unreliable:
            card["unreliable"] = True
        write(cards, name, card)
    build_leaderboard([cards], "cifar10", "Linf", tmp_path / "b")
    md = (tmp_path / "b" / "README.md").read_text(encoding="utf-8")
    rows = {line.split(" | ")[2]: line for line in md.splitlines() if line.startswith("| ") and " | " in line}
    assert "40.00 *unreliable* |" in rows["Warned"] and "*unreliable*" not in rows["Tied"]
    assert "| 20.00 (b) |" in rows["Warned"]  # worst class named
    assert "| 0.00 (all classes) |" in rows["Tied"]  # every class at 0: no class is worst
    assert "Best known: RobustBench's `external`" in md
    assert ("- Spearman rank correlation of CAS with AutoAttack accuracy: ρ = 1.00 over 3 models "
            "(p = 0.33)") in md


def test_leaderboard_result_summary_is_what_the_command_prints():
    from rb_crossclass.leaderboard import LeaderboardResult

    result = LeaderboardResult("out", "cifar10", "Linf", "robust", 5, 3, 2, 2, ["a"],
                               ["index.html", "README.md"], warnings=["card x: odd"])
    assert result.summary().splitlines() == [
        "leaderboard cifar10/Linf: 5 entries (3 official, 2 with cross-class scores, 2 plotted), "
        "sorted by robust",
        "wrote index.html, README.md to out", "warning: card x: odd"]


def test_cards_zoo_names_our_zoo_wherever_the_command_runs(tmp_path, monkeypatch):
    """--cards zoo: reads the model zoo's cards (found as `zoo list` finds them), so a user outside
    the checkout can put the zoo on a board; the same files as the checkout's model_zoo folder."""
    from rb_crossclass.leaderboard.collect import ZOO_CARDS, card_paths
    from rb_crossclass.zoo import zoo_root

    checkout_zoo = Path(__file__).resolve().parent.parent / "model_zoo"
    monkeypatch.chdir(tmp_path)  # no ./model_zoo here
    monkeypatch.delenv("RB_CROSSCLASS_ZOO", raising=False)
    got = card_paths([ZOO_CARDS], "cifar10", "Linf")
    assert [p.name for p, _ in got] == [p.name for p, _ in card_paths([checkout_zoo], "cifar10", "Linf")]
    assert got and all(p.is_relative_to(zoo_root()) for p, _ in got)
    with pytest.raises(LeaderboardError, match="cards folder not found: zoo"):
        card_paths(["zoo"], "cifar10", "Linf")  # a plain folder name is still a folder
