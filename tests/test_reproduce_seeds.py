"""Several seeds of `reproduce dynamics`: the claim tests on synthetic dynamics whose answer is
known, the statistics' decision rule, seed handling (the override reaches the training config; the
aggregate is deterministic), the aggregate-only command on partial folders, the multi-seed command
with a stand-in for training (run i of n, resume after Ctrl-C) and the figure."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import yaml

from rb_crossclass.cli import main
from rb_crossclass.reproduce import aggregate, load_preset, preset_for_seed, read_seed_folder, write_aggregate
from rb_crossclass.reproduce.stats import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    decide,
    summarize,
)

EPOCHS = 40
RUNS = [("pgd_at_eps2-255", "pgd_at", "2/255"), ("pgd_at_eps4-255", "pgd_at", "4/255"),
        ("pgd_at_eps8-255", "pgd_at", "8/255"), ("kd_eps8-255", "kd", "8/255"),
        ("ema_self_distill_eps8-255", "ema_self_distill", "8/255"),
        ("label_smoothing_eps8-255", "label_smoothing", "8/255")]
# the paper's shape: best − last CAS gap grows with ε, soft labels fall less than PGD-AT 8/255
FALL = {"pgd_at_eps2-255": 2.0, "pgd_at_eps4-255": 4.0, "pgd_at_eps8-255": 8.0, "kd_eps8-255": 2.0,
        "ema_self_distill_eps8-255": 3.0, "label_smoothing_eps8-255": 4.0}


def paper_shaped(name: str, seed: int) -> list[dict]:
    """CAS rises from 3 to a plateau by epoch 8, falls by FALL[name] after the best epoch (15);
    robust accuracy peaks at epoch 15 and falls; seeded noise (±0.3 on CAS, ±0.1 on robust accuracy)."""
    rng = random.Random(f"{name}-{seed}")
    epochs = []
    for e in range(1, EPOCHS + 1):
        cas = 3 + 12 * min(e, 8) / 8 - FALL[name] * max(0, e - 15) / (EPOCHS - 15)
        robust = 10 + e if e <= 15 else 25 - 6 * (e - 15) / (EPOCHS - 15)
        noise = rng.uniform(-0.1, 0.1) * (e != 15)
        epochs.append({"epoch": e, "clean_acc": robust + 10, "robust_acc": robust + noise,
                       "cas": cas + rng.uniform(-0.3, 0.3)})
    return epochs


def flat(name: str, seed: int) -> list[dict]:
    """CAS flat at 10 with seeded noise; robust accuracy rises to the last epoch (best = last)."""
    rng = random.Random(f"flat-{name}-{seed}")
    return [{"epoch": e, "clean_acc": 30.0 + e / 10, "robust_acc": 20.0 + e / 10,
             "cas": 10 + rng.uniform(-1, 1)} for e in range(1, EPOCHS + 1)]


def write_seed(folder: Path, seed: int | None, series, runs=RUNS, finished=True) -> Path:
    """A seed folder holding only dynamics.json (as docs/reproductions/dynamics_cpu does)."""
    folder.mkdir(parents=True, exist_ok=True)
    record = {"preset": "cpu", "runs": [{"name": n, "recipe": r, "eps": e, "teacher": None,
                                         "finished": finished, "epochs": series(n, seed or 0)}
                                        for n, r, e in runs]}
    if seed is not None:
        record["seed"] = seed
    (folder / "dynamics.json").write_text(json.dumps(record))
    return folder


def claims_of(tmp_path: Path, series, seeds=(0, 1, 2)) -> dict[str, dict]:
    preset = load_preset("cpu")
    folders = [read_seed_folder(write_seed(tmp_path / f"s{s}", s, series), preset) for s in seeds]
    return {c["key"]: c for c in aggregate(folders, "cpu")["claims"]}


# ---------------------------------------------------------------------------- statistics
def test_decision_rule_on_known_differences():
    assert decide([2.0, 2.5, 1.8], n_seeds=3).verdict == REPRODUCED
    assert decide([-2.0, -2.5, -1.8], n_seeds=3).verdict == NOT_REPRODUCED  # significant, opposite
    assert decide([0.0, 0.0, 0.0], n_seeds=3).verdict == NOT_REPRODUCED  # mean not > 0 with 3 seeds
    assert decide([-0.5, 0.4], n_seeds=2).verdict == INCONCLUSIVE  # 2 seeds: the sign alone is not enough
    assert decide([3.0, 1.0, -0.5], n_seeds=3).verdict == INCONCLUSIVE  # positive but not significant
    one = decide([2.0, 2.1, 1.9, 2.2], n_seeds=1)  # four runs of one seed
    assert one.verdict == INCONCLUSIVE and "1 seed" in one.reason and one.p_paper < 0.05
    d = decide([1.0, 2.0, 3.0], n_seeds=3)
    # t = 2 / (1/sqrt 3) = 3.464, df 2: one-sided p = 0.0370
    assert d.p_paper == pytest.approx(0.0370, abs=1e-4) and d.p_sign == pytest.approx(0.125)


def test_interval_only_from_three_seeds():
    two = summarize([1.0, 3.0])
    assert two.ci95 is None and two.mean == 2.0 and "no interval" in two.note
    three = summarize([1.0, 2.0, 3.0])
    lo, hi = three.ci95  # mean 2, sd 1, t(0.975, 2) = 4.303
    half = 4.303 / math.sqrt(3)
    assert lo == pytest.approx(2 - half, abs=1e-3) and hi == pytest.approx(2 + half, abs=1e-3)
    assert summarize([1.0, 2.0, 3.0], n_seeds=2).ci95 is None  # three runs of two seeds


# ---------------------------------------------------------------------------- the claims
def test_paper_shaped_dynamics_reproduce_every_claim(tmp_path):
    claims = claims_of(tmp_path, paper_shaped)
    for key in ("0", "a", "b", "c", "d", "d.kd_eps8-255", "d.ema_self_distill_eps8-255",
                "d.label_smoothing_eps8-255"):
        assert claims[key]["verdict"] == REPRODUCED, (key, claims[key])
    assert claims["b"]["n"] == 18 and claims["b"]["n_seeds"] == 3
    assert claims["c"]["summary"]["mean"] == pytest.approx(1.0, abs=0.15)  # gap 2, 4, 8 at ε 2, 4, 8
    assert claims["d"]["summary"]["ci95"] is not None


def test_flat_dynamics_reproduce_nothing(tmp_path):
    claims = claims_of(tmp_path, flat)
    assert claims["b"]["verdict"] == NOT_REPRODUCED  # best = last: the gap is exactly 0 in every run
    assert claims["0"]["verdict"] == NOT_REPRODUCED
    assert claims["a"]["verdict"] in (NOT_REPRODUCED, INCONCLUSIVE)  # no rise beyond the noise


def test_reversed_soft_labels_are_not_reproduced(tmp_path):
    def soft_falls_more(name, seed):
        epochs = paper_shaped(name, seed)
        if not name.startswith("pgd_at"):
            for e in epochs:
                e["cas"] -= 6 * max(0, e["epoch"] - 15) / (EPOCHS - 15)
        return epochs

    claims = claims_of(tmp_path, soft_falls_more)
    assert claims["d"]["verdict"] == NOT_REPRODUCED and claims["b"]["verdict"] == REPRODUCED


def test_one_seed_is_inconclusive_everywhere(tmp_path):
    claims = claims_of(tmp_path, paper_shaped, seeds=(0,))
    assert {c["verdict"] for c in claims.values()} == {INCONCLUSIVE}
    table = (write_aggregate(aggregate([read_seed_folder(tmp_path / "s0", load_preset("cpu"))], "cpu"),
                             tmp_path / "agg")["table"]).read_text()
    assert "**1 seed(s) with finished runs**" in table
    row = next(line for line in table.splitlines() if line.startswith("| pgd_at_eps8-255 | 0 |"))
    assert "[" not in row and "(1 seed)" in row  # no interval from one seed


def test_runs_of_one_seed_do_not_outvote_the_replicated_ones():
    """Seed 0 complete with a clear best > last gap in six runs, seed 1 with one run whose gap is
    negative: the pooled test uses the replicated run only (two pairs), so it is inconclusive instead
    of 'reproduced' on the strength of seed 0's runs."""
    from rb_crossclass.reproduce.claims import run_claims

    info = {n: {"recipe": r, "eps": e} for n, r, e in RUNS}

    def m(gap):
        return {"cas_gap": gap, "robust_gap": 5.0, "rise": {"rise": 7.0}}

    per_seed = {n: {0: m(2.0 + i / 2)} for i, (n, _, _) in enumerate(RUNS)}
    per_seed["pgd_at_eps8-255"][1] = m(-1.5)
    claims = {c.key: c for c in run_claims(per_seed, info)}
    b = claims["b"]
    assert [(d["seed"], d["run"]) for d in b.diffs] == [(0, "pgd_at_eps8-255"), (1, "pgd_at_eps8-255")]
    assert b.decision.verdict == INCONCLUSIVE
    assert claims["d"].diffs == [] and "2 seeds" in claims["d"].decision.reason
    # with seed 0's runs pooled in, the same data would have looked significant
    assert decide([2.0, 2.5, 3.0, 3.5, 4.0, 4.5, -1.5], n_seeds=2).verdict == REPRODUCED


# ---------------------------------------------------------------------------- seeds and aggregation
def test_seed_override_reaches_the_training_config(tmp_path):
    from rb_crossclass.reproduce.dynamics import run_config
    from rb_crossclass.train import config_from_dict

    preset = load_preset("cpu")
    seeded = preset_for_seed(preset, 7)
    assert preset.base["seed"] == 0 and seeded.base["seed"] == 7
    for spec in seeded.runs:
        cfg = config_from_dict(run_config(seeded, spec, tmp_path / "seed_7"), "test")
        assert cfg.seed == 7
    kd = next(s for s in seeded.runs if s.teacher)
    teacher = run_config(seeded, kd, tmp_path / "seed_7")["recipe"]["params"]["teacher_checkpoint"]
    assert teacher.startswith(str(tmp_path / "seed_7" / "runs"))  # its own seed's teacher


def test_aggregation_is_deterministic_and_order_free(tmp_path):
    preset = load_preset("cpu")
    dirs = [write_seed(tmp_path / f"s{s}", s, paper_shaped) for s in (0, 1, 2)]
    a = aggregate([read_seed_folder(d, preset) for d in dirs], "cpu")
    b = aggregate([read_seed_folder(d, preset) for d in reversed(dirs)], "cpu")
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    pa = write_aggregate(a, tmp_path / "a")
    pb = write_aggregate(b, tmp_path / "b")
    for key in ("json", "table", "figure"):
        assert pa[key].read_bytes() == pb[key].read_bytes()
    pgd8 = next(r for r in a["runs"] if r["name"] == "pgd_at_eps8-255")
    assert pgd8["metrics"]["best_epoch"]["mean"] == 15 and pgd8["seeds"] == [0, 1, 2]
    with pytest.raises(Exception, match="same seed appears twice"):
        aggregate([read_seed_folder(dirs[0], preset), read_seed_folder(dirs[0], preset)], "cpu")


def partial_run_folder(folder: Path, seed: int, finished: set[str]) -> Path:
    """A seed folder being trained: runs/<name>/{config.yaml, metrics.jsonl, scores/}; summary.json
    only for ``finished`` runs (the last two epochs of the others not yet written)."""
    for name, _, _ in RUNS[2:4]:
        run_dir = folder / "runs" / name
        (run_dir / "scores").mkdir(parents=True)
        (run_dir / "config.yaml").write_text(yaml.safe_dump({"name": name, "seed": seed}))
        epochs = paper_shaped(name, seed)
        if name not in finished:
            epochs = epochs[:12]
        rows = [{"epoch": e["epoch"], "clean_acc": e["clean_acc"] / 100, "robust_acc": e["robust_acc"] / 100,
                 "cas": e["cas"]} for e in epochs]
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        for e in epochs[:3]:
            intervals = {"robust_accuracy": [0.20, 0.26]}
            if name == "pgd_at_eps8-255":  # trained with eval.intervals: a CAS bootstrap too
                intervals["cas"] = [e["cas"] - 0.8, e["cas"] + 0.8]
            (run_dir / "scores" / f"epoch_{e['epoch']:03d}.json").write_text(json.dumps(
                {"cas": e["cas"], "intervals": intervals}))
        if name in finished:
            (run_dir / "summary.json").write_text("{}")
    return folder


def test_summary_command_on_partial_folders(tmp_path, capsys):
    seed0 = write_seed(tmp_path / "published", None, paper_shaped)  # no seed recorded: given as 0=
    seed1 = partial_run_folder(tmp_path / "seed_1", 1, finished={"pgd_at_eps8-255"})
    out = tmp_path / "summary"
    assert main(["reproduce", "dynamics-summary", "--seed-dirs", f"0={seed0}", str(seed1),
                 "--out", str(out)]) == 0
    record = json.loads((out / "dynamics.json").read_text())
    assert record["kind"] == "seeds" and record["seeds"] == [0, 1]
    runs = {r["name"]: r for r in record["runs"]}
    assert runs["pgd_at_eps8-255"]["seeds"] == [0, 1] and runs["kd_eps8-255"]["seeds"] == [0]
    assert "seed 1: kd_eps8-255 unfinished (at epoch 12), left out" in record["notes"]
    assert "seed 1: label_smoothing_eps8-255 not started, left out" in record["notes"]
    assert record["folders"]["1"]["sources"]["pgd_at_eps8-255"] == "runs"
    assert record["folders"]["0"]["sources"]["pgd_at_eps8-255"] == "dynamics.json"
    # measurement noise from the score files, unfinished runs included: Wilson half-width 3 points
    assert runs["kd_eps8-255"]["noise"]["robust_half_width"] == pytest.approx(3.0)
    assert runs["kd_eps8-255"]["noise"]["cas_half_width"] is None
    assert runs["pgd_at_eps8-255"]["noise"]["cas_half_width"] == pytest.approx(0.8)
    assert runs["pgd_at_eps8-255"]["noise"]["seeds_with_score_files"] == [1]
    table = (out / "table.md").read_text()
    assert "## The claims" in table and "| d | soft labels keep more CAS" in table and "not recorded" in table
    assert (out / "dynamics.png").read_bytes()[:4] == b"\x89PNG"
    assert "aggregated seeds [0, 1]" in capsys.readouterr().out
    claims = {c["key"]: c for c in record["claims"]}
    assert claims["b"]["n"] == 2 and record["replicated_runs"] == ["pgd_at_eps8-255"]
    assert "finished in one seed only, so left out: pgd_at_eps2-255" in table
    assert main(["reproduce", "dynamics-summary", "--seed-dirs", str(seed0), "--out", str(out)]) == 1
    assert "write it as SEED=" in capsys.readouterr().err
    assert main(["reproduce", "dynamics-summary", "--seed-dirs", f"2={seed1}", "--out", str(out)]) == 1
    assert "was trained with seed 1, not 2" in capsys.readouterr().err


# ---------------------------------------------------------------------------- the multi-seed command
def fake_preset(tmp_path: Path) -> Path:
    preset = {"name": "fake", "base": {"seed": 0, "model": {"source": "timm:resnet10t"},
                                       "data": {"train": "mnist", "eval": "mnist"},
                                       "optim": {"epochs": EPOCHS}},
              "runs": [{"recipe": "pgd_at", "eps": "8/255"},
                       {"recipe": "kd", "eps": "8/255", "teacher": "pgd_at_eps8-255"}]}
    path = tmp_path / "fake.yaml"
    path.write_text(yaml.safe_dump(preset))
    return path


class FakeTrain:
    """Stands in for training: records (seed, run folder) and writes a finished run's files."""

    def __init__(self, interrupt_at: int | None = None) -> None:
        self.calls: list[tuple[int, str]] = []
        self.interrupt_at = interrupt_at

    def __call__(self, cfg, run_dir, resume=False):
        if self.interrupt_at is not None and len(self.calls) == self.interrupt_at:
            raise KeyboardInterrupt
        run_dir = Path(run_dir)
        self.calls.append((cfg.seed, str(run_dir)))
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(yaml.safe_dump({"seed": cfg.seed}))
        rows = [{"epoch": e["epoch"], "clean_acc": e["clean_acc"] / 100, "robust_acc": e["robust_acc"] / 100,
                 "cas": e["cas"]} for e in paper_shaped(run_dir.name, cfg.seed)]
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (run_dir / "summary.json").write_text("{}")

        class Result:
            seconds = 1.0
        return Result()


def test_seeds_command_trains_each_seed_then_aggregates(tmp_path, capsys, monkeypatch):
    from rb_crossclass.reproduce import dynamics

    fake = FakeTrain()
    monkeypatch.setattr(dynamics, "train", fake)
    out = tmp_path / "out"
    argv = ["reproduce", "dynamics", "--preset", str(fake_preset(tmp_path)), "--seeds", "0", "1", "2",
            "--out", str(out)]
    assert main(argv) == 0
    assert fake.calls == [(s, str(out / f"seed_{s}" / "runs" / n)) for s in (0, 1, 2)
                          for n in ("pgd_at_eps8-255", "kd_eps8-255")]
    printed = capsys.readouterr().out
    assert "run 1 of 6: seed 0: pgd_at_eps8-255" in printed and "ETA after the first run" in printed
    assert "run 6 of 6: seed 2: kd_eps8-255" in printed and "ETA " in printed.split("run 2 of 6")[1]
    for s in (0, 1, 2):  # every seed is an ordinary single-seed reproduction
        assert json.loads((out / f"seed_{s}" / "dynamics.json").read_text())["seed"] == s
    record = json.loads((out / "dynamics.json").read_text())
    assert record["seeds"] == [0, 1, 2]
    assert {c["key"]: c["verdict"] for c in record["claims"]}["b"] == REPRODUCED
    assert (out / "table.md").is_file() and (out / "dynamics.png").is_file()
    assert main(argv) == 0  # finished runs are skipped
    assert len(fake.calls) == 6 and "0 run(s) trained, 6 already finished" in capsys.readouterr().out
    assert main(argv[:-2] + ["--aggregate-only", "--out", str(out)]) == 0
    assert len(fake.calls) == 6


def test_ctrl_c_says_how_to_resume(tmp_path, capsys, monkeypatch):
    from rb_crossclass.reproduce import dynamics

    monkeypatch.setattr(dynamics, "train", FakeTrain(interrupt_at=1))
    out = tmp_path / "out"
    argv = ["reproduce", "dynamics", "--preset", str(fake_preset(tmp_path)), "--seeds", "0", "1",
            "--out", str(out)]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "interrupted during run 2 of 4" in err and "Resume with:" in err
    assert f"--out {out} --seeds 0 1" in err
    fake = FakeTrain()
    monkeypatch.setattr(dynamics, "train", fake)
    assert main(argv) == 0
    assert [c[0] for c in fake.calls] == [0, 1, 1]  # seed 0's finished teacher run is not redone


def test_seed_arguments_are_checked(tmp_path, capsys):
    preset = str(fake_preset(tmp_path))
    base = ["reproduce", "dynamics", "--preset", preset, "--out", str(tmp_path)]
    assert main(base + ["--seeds", "1", "1"]) == 1
    assert "seeds must be distinct" in capsys.readouterr().err
    assert main(base + ["--seeds", "1", "--set", "seed=2"]) == 1
    assert "not with --set seed=" in capsys.readouterr().err
    assert main(base + ["--aggregate-only"]) == 1
    assert "--aggregate-only needs --seeds" in capsys.readouterr().err


# ---------------------------------------------------------------------------- the figure
def test_seed_figure_overlays_recipes_with_bands_and_gap_bars(tmp_path, monkeypatch):
    from rb_crossclass.figures import dynamics as figure

    preset = load_preset("cpu")
    folders = [read_seed_folder(write_seed(tmp_path / f"s{s}", s, paper_shaped), preset) for s in (0, 1, 2)]
    record = aggregate(folders, "cpu")
    captured = {}
    real_save = figure.save_figure

    def capture(fig, path, *args, **kwargs):
        captured["fig"] = fig
        return real_save(fig, path, *args, **kwargs)

    monkeypatch.setattr(figure, "save_figure", capture)
    path = figure.plot_seed_dynamics(record["runs"], tmp_path / "fig.png", title="three seeds")
    assert path.read_bytes()[:4] == b"\x89PNG"
    ax_cas, ax_rob, ax_gap = captured["fig"].axes
    labels = [t.get_text() for t in ax_cas.get_legend().get_texts()]
    assert labels == [f"{n} (3 seeds)" for n, _, _ in RUNS]  # one mean line per run, on one axes
    assert len(ax_cas.collections) >= len(RUNS)  # a min–max band per run
    assert "min–max band" in ax_cas.get_title()
    bars = [p for p in ax_gap.patches]
    assert len(bars) == len(RUNS)
    pgd8 = next(r for r in record["runs"] if r["name"] == "pgd_at_eps8-255")
    assert bars[2].get_height() == pytest.approx(pgd8["metrics"]["cas_gap"]["mean"])
    assert "95% CI" in ax_gap.get_xticklabels()[2].get_text()
    # every seed's best epoch is marked on the CAS axes (stars at epoch 15)
    stars = [line for line in ax_cas.get_lines() if line.get_marker() == "*"]
    assert len(stars) == len(RUNS) and all(set(line.get_xdata()) == {15} for line in stars)


def test_reproduce_dynamics_refuses_inconsistent_arguments_before_training(tmp_path):
    from rb_crossclass.reproduce import ReproduceError, reproduce_dynamics

    with pytest.raises(ReproduceError, match="--seeds, not with --set seed="):
        reproduce_dynamics("cpu", tmp_path, overrides=["seed=3"], seeds=[1, 2])
    with pytest.raises(ReproduceError, match="--aggregate-only needs --seeds"):
        reproduce_dynamics("cpu", tmp_path, aggregate_only=True)
    assert not any(tmp_path.iterdir())
