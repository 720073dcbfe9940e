"""Significance tiers and comparability groups of the boards, checked against statsmodels/scipy."""

from __future__ import annotations

import itertools
import json
import random

import pytest
from test_leaderboard import measured_card, official_card, write

from rb_crossclass.cards.flags import pack_flags, unpack_flags
from rb_crossclass.leaderboard import LeaderboardError, build_leaderboard, build_rows
from rb_crossclass.leaderboard.tiers import assign_tiers, holm, mcnemar_exact_p, two_proportion_p

statsmodels = pytest.importorskip("statsmodels", reason="statsmodels (a dev dependency) is not installed")


# --------------------------------------------------------------------------- the tests themselves
@pytest.mark.parametrize("b,c", [(0, 0), (0, 1), (1, 0), (3, 9), (9, 3), (10, 10), (0, 25), (40, 61),
                                 (123, 180), (700, 760), (2, 2000)])
def test_mcnemar_exact_matches_statsmodels(b, c):
    from statsmodels.stats.contingency_tables import mcnemar

    table = [[50, b], [c, 30]]  # concordant cells do not enter the exact test
    expected = mcnemar(table, exact=True).pvalue
    assert mcnemar_exact_p(b, c) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_mcnemar_on_hand_made_flags():
    """Two models on 12 points: A alone robust on 7 of them, B alone on 1 → b=7, c=1:
    p = 2·(1+8)/2^8 = 0.0703125 (hand-computed), and scipy's binomial test agrees."""
    from scipy.stats import binomtest

    a = [1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0]
    b = [0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 0]
    only_a = sum(x and not y for x, y in zip(a, b, strict=True))
    only_b = sum(y and not x for x, y in zip(a, b, strict=True))
    assert (only_a, only_b) == (7, 1)
    assert mcnemar_exact_p(only_a, only_b) == pytest.approx(0.0703125)
    assert mcnemar_exact_p(only_a, only_b) == pytest.approx(binomtest(1, 8, 0.5).pvalue)


@pytest.mark.parametrize("k1,n1,k2,n2", [(6000, 10000, 5904, 10000), (5210, 10000, 5110, 10000),
                                         (45, 100, 60, 100), (0, 50, 0, 50), (50, 50, 49, 50)])
def test_two_proportion_matches_statsmodels(k1, n1, k2, n2):
    from statsmodels.stats.proportion import proportions_ztest

    if k1 + k2 in (0, n1 + n2):  # statsmodels divides by zero; no difference can be shown
        assert two_proportion_p(k1, n1, k2, n2) == 1.0
        return
    _, expected = proportions_ztest([k1, k2], [n1, n2])
    assert two_proportion_p(k1, n1, k2, n2) == pytest.approx(expected, rel=1e-9)


def test_holm_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    rng = random.Random(0)
    for m in (1, 2, 5, 30):
        p = [rng.random() ** 3 for _ in range(m)]
        expected = multipletests(p, method="holm")[1]
        assert holm(p) == pytest.approx(list(expected))


def test_tiers_cut_at_the_first_significant_difference_from_the_tier_leader():
    """Hand-made p-values: 0~1, 0~2 not significant after Holm; 0 vs 3 significant → 3 opens tier 2;
    3~4 not; so tiers 1,1,1,2,2."""
    strong = {(0, 3), (0, 4), (1, 3), (1, 4), (2, 4)}

    def test(i, j):
        return "hand", 1e-6 if (i, j) in strong else 0.5

    tiers, comparisons = assign_tiers(5, test)
    assert tiers == [1, 1, 1, 2, 2]
    assert len(comparisons) == 10 and all(c.adjusted_p >= c.p_value for c in comparisons)


def test_tiers_one_entry_and_all_equal():
    assert assign_tiers(1, lambda i, j: ("x", 1.0))[0] == [1]
    assert assign_tiers(4, lambda i, j: ("x", 1.0))[0] == [1, 1, 1, 1]


# --------------------------------------------------------------------------- per-point flags on cards
def test_flags_pack_round_trip():
    rng = random.Random(1)
    for n in (0, 1, 3, 4, 5, 17, 1017):
        flags = [rng.random() < 0.5 for _ in range(n)]
        packed = pack_flags(flags)
        assert len(packed) == (n + 3) // 4
        assert unpack_flags(packed, n) == flags
    assert pack_flags("10111") == "b8"
    with pytest.raises(ValueError):
        unpack_flags("b8", 9)
    with pytest.raises(ValueError):
        unpack_flags("zz", 8)


# --------------------------------------------------------------------------- boards
def _with_flags(card: dict, robust: list[bool]) -> dict:
    card["evaluation"]["n_examples"] = len(robust)
    card["evaluation"]["point_flags"] = {"clean": pack_flags([True] * len(robust)),
                                         "robust": pack_flags(robust)}
    card["autoattack_acc"] = f"{100 * sum(robust) / len(robust):.2f}"
    return card


def test_board_tiers_use_mcnemar_on_flags(tmp_path):
    """Three models on the same 200 points: A and B differ on 6 points (not significant), C is
    robust on 60 fewer points than A (significant): tiers A1, A1, A2."""
    base = [True] * 120 + [False] * 80
    a = list(base)
    b = list(base)
    for i in range(3):
        b[i] = False  # A alone on 3
        b[150 + i] = True  # B alone on 3
    c = [False] * 60 + base[60:]
    cards = tmp_path / "cards"
    for name, flags in (("ModelA", a), ("ModelB", b), ("ModelC", c)):
        write(cards, name, _with_flags(measured_card(name, "0.00", cas=5.0), flags))
    build_leaderboard([cards], "cifar10", "Linf", tmp_path / "board")
    board = json.loads((tmp_path / "board" / "leaderboard.json").read_text())
    tiers = {r["model_id"]: r["tier"] for r in board["entries"]}
    assert tiers == {"ModelA": "A1", "ModelB": "A1", "ModelC": "A2"}
    tests = {(c["first"], c["second"]): c for c in board["comparisons"]}
    assert all(c["test"] == "mcnemar_exact" for c in tests.values())
    assert tests[("ModelA", "ModelB")]["p_value"] == pytest.approx(1.0)
    readme = (tmp_path / "board" / "README.md").read_text()
    assert "| Tier |" in readme and "McNemar" in readme and "Holm" in readme


def test_official_rows_tiered_from_aggregates_at_n_10000(tmp_path):
    """Official rows only give an accuracy: the pooled z-test at N = 10,000 (RobustBench's N)."""
    from statsmodels.stats.proportion import proportions_ztest

    cards = tmp_path / "cards"
    for name, aa in (("Top", "60.00"), ("Near", "59.50"), ("Far", "55.00")):
        write(cards, name, official_card(name, aa))
    rows = {r["model_id"]: r for r in build_rows([cards], "cifar10", "Linf")}
    assert rows["Top"]["n_examples"] == 10000 and rows["Top"]["eps_txt"] == "8/255"
    assert rows["Top"]["tier"] == rows["Near"]["tier"] == "A1" and rows["Far"]["tier"] == "A2"
    _, p_near = proportions_ztest([6000, 5950], [10000, 10000])
    assert p_near * 3 > 0.05  # Holm's first step keeps it: not significant


def test_mixed_n_rows_are_separated_into_groups_and_the_page_says_how(tmp_path):
    """RobustBench's 10,000-point rows and our 500-point rows are never tiered together."""
    cards = tmp_path / "cards"
    write(cards, "Official1", official_card("Official1", "60.00"))
    write(cards, "Official2", official_card("Official2", "50.00"))
    write(cards, "Ours500", measured_card("Ours500", "58.00", cas=5.0))
    small = measured_card("Ours100", "59.00", cas=6.0)
    small["evaluation"]["n_examples"] = 100
    write(cards, "Ours100", small)
    build_leaderboard([cards], "cifar10", "Linf", tmp_path / "board")
    board = json.loads((tmp_path / "board" / "leaderboard.json").read_text())
    rows = {r["model_id"]: r for r in board["entries"]}
    groups = {r["model_id"]: r["group"] for r in board["entries"]}
    assert groups["Official1"] == groups["Official2"]
    assert len({groups["Official1"], groups["Ours500"], groups["Ours100"]}) == 3
    assert {(rows[m]["n_examples"]) for m in rows} == {10000, 500, 100}
    assert all(groups[c["first"]] == groups[c["second"]]
               for c in board["comparisons"])
    assert len(board["comparability_groups"]) == 3
    readme = (tmp_path / "board" / "README.md").read_text()
    assert "N = 10,000" in readme and "N = 500" in readme and "N = 100" in readme
    assert "only entries of the same group may be compared" in readme
    assert "varies by entry (see each model's page)" not in readme
    html = (tmp_path / "board" / "index.html").read_text()
    assert 'id="groups"' in html and "N = 500" in html


def test_a_board_holds_one_eps_per_threat_model(tmp_path):
    cards = tmp_path / "cards"
    write(cards, "At8", official_card("At8", "50.00"))
    write(cards, "At2", official_card("At2", "70.00", eps="2/255"))
    with pytest.raises(LeaderboardError, match="one eps per threat model"):
        build_rows([cards], "cifar10", "Linf")
    warnings: list[str] = []
    rows = build_rows([cards], "cifar10", "Linf", warnings=warnings, eps="2/255")
    assert [r["model_id"] for r in rows] == ["At2"] and rows[0]["eps_txt"] == "2/255"
    assert any("At8.json: skipped" in w for w in warnings)


def test_every_pair_in_a_group_is_compared(tmp_path):
    cards = tmp_path / "cards"
    names = [f"M{i}" for i in range(5)]
    for i, name in enumerate(names):
        write(cards, name, official_card(name, f"{60 - 2 * i:.2f}"))
    build_leaderboard([cards], "cifar10", "Linf", tmp_path / "b")
    board = json.loads((tmp_path / "b" / "leaderboard.json").read_text())
    pairs = {(c["first"], c["second"]) for c in board["comparisons"]}
    assert pairs == set(itertools.combinations(names, 2))


def test_aa_cost_column_and_schema(tmp_path):
    """Our rows say what their evaluation cost; official rows have no cost ('—'); the card's cost
    block is schema-checked."""
    from rb_crossclass.cards import CardError, validate_card

    cards = tmp_path / "cards"
    ours = measured_card("Ours", "40.00", cas=5.0)
    ours["evaluation"].update(forward_samples=123_000, backward_samples=34_000, seconds=12.4, device="cpu")
    ours["evaluation"]["cost"] = {"autoattack_seconds": 10.0, "scoring_seconds": 2.0,
                                  "forward_samples": 123_000, "backward_samples": 34_000, "device": "cpu",
                                  "threads": 2, "world_size": 1,
                                  "autoattack_dtype": "float32", "scoring_dtype": "float32"}
    write(cards, "Ours", ours)
    write(cards, "Off", official_card("Off", "50.00"))
    build_leaderboard([cards], "cifar10", "Linf", tmp_path / "b")
    md = (tmp_path / "b" / "README.md").read_text()
    rows = {line.split(" | ")[2]: line for line in md.splitlines() if line.startswith("| ") and " | " in line}
    assert "| 0.12 M fwd + 0.03 M bwd · 12 s · cpu×2 |" in rows["Ours"]
    assert "AA cost" in md and "M fwd" not in rows["Off"]
    assert "0.12 M fwd + 0.03 M bwd" in (tmp_path / "b" / "index.html").read_text()
    ours["evaluation"]["cost"]["threads"] = 0
    with pytest.raises(CardError, match="threads"):
        validate_card(ours)
