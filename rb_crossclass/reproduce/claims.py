"""The paper's claims about training dynamics as tests across seeds (Wei, Guo & Wang, ICML 2025).

Each test builds paired differences ``d`` oriented so that the paper's claim means ``d > 0`` and
hands them to :func:`.stats.decide` (one-sided paired t-test at 0.05, sign test reported; the exact
rule is in :mod:`.stats`). Only finished runs enter; every value is a single epoch's (no smoothing).

- **(0) robust overfitting** (the precondition): robust accuracy at the best epoch minus at the last,
  one ``d`` per (seed, run);
- **(a) CAS rises in the first phase**: mean CAS over epochs 3..⌊last/2⌋ minus mean CAS of epochs
  1-2, one ``d`` per (seed, run) (the mean, not the peak: a peak of noisy epochs is biased upwards);
- **(b) CAS at the best checkpoint exceeds CAS at the last**: CAS(best) − CAS(last), one ``d`` per
  (seed, run);
- **(c) the best − last CAS gap grows with ε** (PGD-AT): per seed, the least-squares slope of the
  gap against ε·255 over the PGD-AT runs of that seed (at least 2 ε), one ``d`` per seed;
- **(d) soft labels keep more CAS**: per seed, the best − last CAS gap of PGD-AT minus the mean gap of
  the soft-label runs (kd, ema_self_distill, label_smoothing) at the same ε; plus one sub-test per
  soft-label recipe (``d.<recipe>``).

Only *replicated* runs enter the pooled tests: those finished in at least 2 seeds (for (d), soft-label
runs replicated together with their PGD-AT reference). A run seen in one seed only cannot separate its
effect from that seed's training noise, and letting it in would let one seed's many runs outvote the
others (with seed 0 complete and seed 1 holding one run, 6 of 7 pairs would come from seed 0). The
(seed, run) pairs of one seed still share the data order and, within a recipe family, the initial
weights, so they are not fully independent; the verdict therefore also needs at least 2 *seeds* (the
``n_seeds`` the rule counts is the number of distinct seeds among the differences). Every seed's raw
values, replicated or not, are in the table.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.threat import parse_eps
from .stats import MIN_SEEDS_FOR_VERDICT, Decision, Summary, decide, summarize

SOFT_RECIPES = ("kd", "ema_self_distill", "label_smoothing")
REFERENCE_RECIPE = "pgd_at"


@dataclass(frozen=True)
class ClaimTest:
    """One claim's test: the differences it rests on, their summary and the decision."""

    key: str
    claim: str
    statistic: str
    diffs: list[dict]  # [{"seed": s, "run": name or None, "value": d}]
    summary: Summary
    decision: Decision
    test: str = "one-sided paired t-test (H1: mean d > 0), α = 0.05; sign test reported"

    @property
    def n_seeds(self) -> int:
        return len({d["seed"] for d in self.diffs})

    def to_dict(self) -> dict:
        return {"key": self.key, "claim": self.claim, "statistic": self.statistic, "test": self.test,
                "n": len(self.diffs), "n_seeds": self.n_seeds, "diffs": self.diffs,
                "summary": self.summary.to_dict(), "verdict": self.decision.verdict,
                "p_paper": self.decision.p_paper, "p_opposite": self.decision.p_opposite,
                "p_sign": self.decision.p_sign, "reason": self.decision.reason}


NO_REPLICATE = (f"no run is finished in ≥ {MIN_SEEDS_FOR_VERDICT} seeds yet: one seed cannot tell the effect "
                "from training noise")


def _test(key: str, claim: str, statistic: str, diffs: list[dict], empty_reason: str = NO_REPLICATE
          ) -> ClaimTest:
    values = [d["value"] for d in diffs]
    n_seeds = len({d["seed"] for d in diffs})
    decision = decide(values, n_seeds)
    if not diffs:
        decision = Decision(decision.verdict, None, None, None, empty_reason)
    return ClaimTest(key, claim, statistic, diffs, summarize(values, n_seeds), decision)


def replicated(per_seed: dict[str, dict[int, dict]], names: list[str]) -> list[str]:
    """The runs finished in at least ``MIN_SEEDS_FOR_VERDICT`` seeds."""
    return [n for n in names if len(per_seed.get(n, {})) >= MIN_SEEDS_FOR_VERDICT]


def _pairs(per_seed: dict[str, dict[int, dict]], key, runs: list[str]) -> list[dict]:
    """One difference per (seed, run) from ``key(milestones)`` (``None`` values skipped)."""
    out = []
    for name in runs:
        for seed, m in sorted(per_seed.get(name, {}).items()):
            value = key(m)
            if value is not None:
                out.append({"seed": seed, "run": name, "value": value})
    return out


def run_claims(per_seed: dict[str, dict[int, dict]], info: dict[str, dict]) -> list[ClaimTest]:
    """Every claim test. ``per_seed[run][seed]``: the milestones of
    :func:`.aggregate.seed_milestones`; ``info[run]``: ``{"recipe", "eps"}``."""
    names = replicated(per_seed, list(info))
    tests = [
        _test("0", "robust overfitting: robust accuracy at the best epoch > at the last",
              "d = robust acc(best) − robust acc(last), % points, per (seed, run)",
              _pairs(per_seed, lambda m: m["robust_gap"], names)),
        _test("a", "CAS rises in the first phase of training",
              "d = mean CAS(epochs 3..last/2) − mean CAS(epochs 1-2), per (seed, run)",
              _pairs(per_seed, lambda m: (m["rise"] or {}).get("rise"), names)),
        _test("b", "CAS at the best checkpoint > CAS at the last epoch",
              "d = CAS(best epoch) − CAS(last epoch), per (seed, run)",
              _pairs(per_seed, lambda m: m["cas_gap"], names)),
        gap_vs_eps(per_seed, info),
    ]
    return tests + soft_label_tests(per_seed, info)


def gap_vs_eps(per_seed: dict[str, dict[int, dict]], info: dict[str, dict]) -> ClaimTest:
    """(c): per seed, the OLS slope of PGD-AT's best − last CAS gap against ε·255."""
    pgd = [n for n in info if info[n]["recipe"] == REFERENCE_RECIPE]
    seeds = sorted({s for n in pgd for s in per_seed.get(n, {})})
    diffs = []
    for seed in seeds:
        points = [(255 * parse_eps(info[n]["eps"]), per_seed[n][seed]["cas_gap"]) for n in pgd
                  if seed in per_seed.get(n, {}) and per_seed[n][seed]["cas_gap"] is not None]
        if len({x for x, _ in points}) >= 2:
            diffs.append({"seed": seed, "run": None, "value": _slope(points),
                          "points": [{"eps_255": x, "cas_gap": y} for x, y in sorted(points)]})
    return _test("c", "the best − last CAS gap grows with ε (PGD-AT)",
                 "d = least-squares slope of CAS(best) − CAS(last) against ε·255, per seed", diffs,
                 "no seed has finished PGD-AT runs at 2 or more ε")


def _slope(points: list[tuple[float, float]]) -> float:
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)


def soft_label_tests(per_seed: dict[str, dict[int, dict]], info: dict[str, dict]) -> list[ClaimTest]:
    """(d) pooled over the soft-label recipes, then one sub-test per soft-label run; the pooled test
    uses the soft-label runs finished, together with their reference, in at least 2 seeds."""
    soft = [n for n in info if info[n]["recipe"] in SOFT_RECIPES]
    ref = {n: next((r for r in info if info[r]["recipe"] == REFERENCE_RECIPE
                    and parse_eps(info[r]["eps"]) == parse_eps(info[n]["eps"])), None) for n in soft}

    def gap(name: str | None, seed: int) -> float | None:
        m = per_seed.get(name or "", {}).get(seed)
        return None if m is None else m["cas_gap"]

    seeds = sorted({s for n in soft for s in per_seed.get(n, {})})
    both = {n: [s for s in seeds if gap(ref[n], s) is not None and gap(n, s) is not None] for n in soft}
    pooled_runs = [n for n in soft if len(both[n]) >= MIN_SEEDS_FOR_VERDICT]
    pooled = []
    for seed in seeds:
        pairs = [(n, gap(ref[n], seed), gap(n, seed)) for n in pooled_runs]
        pairs = [(n, g_ref, g) for n, g_ref, g in pairs if g_ref is not None and g is not None]
        if pairs:
            pooled.append({"seed": seed, "run": None, "runs": [n for n, _, _ in pairs],
                           "value": sum(g_ref - g for _, g_ref, g in pairs) / len(pairs)})
    tests = [_test("d", "soft labels keep more CAS: a smaller best − last CAS gap than PGD-AT at the same ε",
                   "d = gap(PGD-AT) − mean gap(soft-label runs), per seed", pooled)]
    for n in soft:
        diffs = [{"seed": s, "run": n, "value": gap(ref[n], s) - gap(n, s)} for s in both[n]]
        tests.append(_test(f"d.{n}", f"{n} keeps more CAS than {ref[n]}",
                           f"d = gap({ref[n]}) − gap({n}), per seed", diffs))
    return tests
