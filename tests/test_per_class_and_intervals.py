"""Per-class robustness and 95 % intervals, checked by hand on tiny cases."""

from __future__ import annotations

import json
import math

import pytest
import torch

from rb_crossclass.crossclass import accuracy_interval, bootstrap_cas, per_class_block, per_class_from_flags


def test_per_class_from_known_flags():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    clean = torch.tensor([1, 1, 1, 0, 1, 1, 1, 1, 1, 1], dtype=torch.bool)
    robust = torch.tensor([1, 0, 0, 0, 1, 1, 1, 1, 0, 0], dtype=torch.bool)
    block = per_class_from_flags(labels, clean, robust, ["cat", "dog", "eel", "fox"])
    assert block["counts"] == [4, 2, 4, 0]
    assert block["clean_accuracy"] == [0.75, 1.0, 1.0, None]
    assert block["robust_accuracy"] == [0.25, 1.0, 0.5, None]  # fox has no test point
    assert block["worst_class"] == "cat" and block["worst_class_robust_accuracy"] == 0.25
    assert block["best_class_robust_accuracy"] == 1.0 and block["spread"] == 0.75
    assert block["robust_interval"][3] is None
    lo, hi = block["robust_interval"][0]
    assert lo < 0.25 < hi


def test_worst_class_ties_take_the_lowest_index_and_counts_must_match():
    block = per_class_block([2, 2], [2, 2], [1, 1], ["a", "b"])
    assert block["worst_class"] == "a" and block["spread"] == 0.0
    with pytest.raises(ValueError, match="3 class names"):
        per_class_block([1, 1], [1, 1], [1, 1], ["a", "b", "c"])


def test_wilson_interval_matches_the_formula():
    k, n, z = 30, 100, 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert accuracy_interval(k, n) == pytest.approx((centre - half, centre + half), rel=1e-6)
    assert accuracy_interval(0, 10)[0] == 0.0 and accuracy_interval(10, 10)[1] == pytest.approx(1.0)
    assert all(math.isnan(v) for v in accuracy_interval(0, 0))


def test_bootstrap_cas_brackets_the_estimate_and_shrinks_with_n():
    from rb_crossclass.crossclass import attribution_matrix, cas, class_attribution_vectors

    g = torch.Generator().manual_seed(0)
    k, d = 4, 16
    weight = torch.randn(k, d, generator=g)

    def sample(n):
        labels = torch.arange(n) % k
        feats = torch.relu(torch.randn(n, d, generator=g) + torch.randn(k, d, generator=g)[labels])
        return feats, labels

    widths = []
    for n in (40, 4000):
        feats, labels = sample(n)
        point = cas(attribution_matrix(class_attribution_vectors(feats, weight, labels, k)))
        lo, hi = bootstrap_cas(feats, labels, weight, resamples=200, seed=1)
        assert lo <= point <= hi
        widths.append(hi - lo)
        assert bootstrap_cas(feats, labels, weight, resamples=200, seed=1) == (lo, hi)  # seeded
    assert widths[1] < widths[0] / 3  # ~ 1/sqrt(n)


# ------------------------------------------------------------------ intervals the data cannot support
def _features(k: int, per_class: int, seed: int = 0, d: int = 32):
    """Synthetic penultimate features: the first ``per_class * k`` points of a test set whose
    labels cycle through the K classes (RobustBench's first-N subset)."""
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(k, d, generator=g)
    means = torch.randn(k, d, generator=g) + 0.7 * torch.randn(d, generator=g)
    labels = torch.arange(k * per_class) % k
    feats = torch.relu(means[labels] + 1.5 * torch.randn(len(labels), d, generator=g))
    return feats, labels, weight


def test_one_point_per_class_gives_a_zero_width_bootstrap_which_the_rule_withholds():
    """The handed case: with one point per class every resample is the data itself (zero width,
    covering the all-images CAS never); the rule withholds it and says why."""
    from rb_crossclass.crossclass.uncertainty import MIN_POINTS_PER_CLASS, WITHHELD, interval_withheld

    feats, labels, weight = _features(10, 1)
    lo, hi = bootstrap_cas(feats, labels, weight, resamples=40)
    assert lo == pytest.approx(hi)
    words = f"withheld (fewer than {MIN_POINTS_PER_CLASS} points in some class)"
    assert interval_withheld([1] * 10) == WITHHELD == words
    assert interval_withheld([MIN_POINTS_PER_CLASS - 1] + [100] * 9) == WITHHELD
    assert interval_withheld([MIN_POINTS_PER_CLASS] * 10) is None
    # classes without points are left out, as in CAS
    assert interval_withheld([0, MIN_POINTS_PER_CLASS, MIN_POINTS_PER_CLASS]) is None
    assert interval_withheld([0, 0]) == WITHHELD


@pytest.mark.parametrize("k", [100, 1000])
def test_first_n_subsets_of_cifar100_and_imagenet_size_withhold_below_the_minimum(k):
    """First-N subsets (N = K·n): below the minimum per class the scorer records the reason and no
    interval; at the minimum it records a real interval (positive width, around the estimate)."""
    from rb_crossclass.core.runtime import Ranks
    from rb_crossclass.crossclass import attribution_matrix, cas, class_attribution_vectors
    from rb_crossclass.crossclass.scoring import _cas_intervals
    from rb_crossclass.crossclass.uncertainty import MIN_POINTS_PER_CLASS, WITHHELD

    for n in (1, 5, MIN_POINTS_PER_CLASS - 1):
        feats, labels, weight = _features(k, n)
        got = _cas_intervals([(feats, feats, labels)], weight, Ranks(), 0)
        assert got == {"cas_withheld": WITHHELD}
    if k == 1000:
        return  # 20,000 points x 200 resamples: the K = 100 case checks the other side
    feats, labels, weight = _features(k, MIN_POINTS_PER_CLASS)
    got = _cas_intervals([(feats, feats, labels)], weight, Ranks(), 0)
    point = cas(attribution_matrix(class_attribution_vectors(feats, weight, labels, k)))
    lo, hi = got["cas"]
    assert "cas_withheld" not in got and hi - lo > 1 and lo < point < hi


def test_every_printer_and_renderer_shows_withheld_never_a_fake_interval(tmp_path, capsys):
    """A card written before the rule (an interval from 1 point per class) and a card carrying the
    withheld reason: `card show` says withheld, the board shows no interval for either; a card with
    enough points per class keeps its interval everywhere."""
    from test_leaderboard import measured_card

    from rb_crossclass.cli import main
    from rb_crossclass.crossclass.uncertainty import WITHHELD
    from rb_crossclass.leaderboard import build_leaderboard

    folder = tmp_path / "cards"
    folder.mkdir()
    cards = {}
    for name, counts, intervals in (("Old", [1, 1], {"cas": [16.22, 16.22]}),
                                    ("New", [3, 2], {"cas_withheld": WITHHELD}),
                                    ("Big", [60, 40], {"cas": [0.41, 0.77]})):
        card = measured_card(name, "40.00", cas=0.6)
        card["cross_class"].update(per_class_counts=counts, intervals=intervals)
        cards[name] = folder / f"{name}.json"
        cards[name].write_text(json.dumps(card))
    for name in ("Old", "New"):
        assert main(["card", "show", str(cards[name])]) == 0
        shown = capsys.readouterr().out
        assert f"(95% CI {WITHHELD})" in shown and "16.22-16.22" not in shown
    assert main(["card", "show", str(cards["Big"])]) == 0
    assert "(95% CI 0.41-0.77)" in capsys.readouterr().out
    build_leaderboard([folder], "cifar10", "Linf", tmp_path / "board")
    text = "\n".join(p.read_text() for p in (tmp_path / "board").rglob("*") if p.suffix in (".md", ".html"))
    assert "16.22" not in text and "0.41–0.77" in text


def test_score_summary_and_record_say_withheld_with_one_point_per_class(tmp_path, capsys):
    from rb_crossclass.cli import main
    from rb_crossclass.crossclass.uncertainty import WITHHELD

    assert main(["score", "--no-progress", "--model", "timm:resnet10t", "--dataset", "sample:cifar10",
                 "--n-examples", "10", "--steps", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    record = json.loads((tmp_path / "crossclass.json").read_text())
    assert max(record["per_class_counts"]) < 20
    assert f"95% CI {WITHHELD}" in out
    assert record["intervals"]["cas_withheld"] == WITHHELD and "cas" not in record["intervals"]
