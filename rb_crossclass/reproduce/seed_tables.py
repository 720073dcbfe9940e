"""``table.md`` of a multi-seed reproduction: the claims' verdicts with their tests, the per-run
means with 95 % t-intervals across seeds (none with fewer than 3 seeds), the two kinds of noise,
and every seed's raw values."""

from __future__ import annotations

from ..core.formatting import MISSING, format_number
from .stats import ALPHA, MIN_SEEDS_FOR_INTERVAL, MIN_SEEDS_FOR_SIGN, MIN_SEEDS_FOR_VERDICT

DECISION_RULE = (
    f"Decision rule (differences d oriented so that the paper's claim is d > 0; α = {ALPHA:g}): "
    f"**inconclusive** with fewer than {MIN_SEEDS_FOR_VERDICT} seeds; **reproduced** when the one-sided "
    f"paired t-test in the paper's direction gives p < α; **not reproduced** when the one-sided test in "
    f"the opposite direction gives p < α, or when the mean of d is ≤ 0 with at least {MIN_SEEDS_FOR_SIGN} "
    "seeds; **inconclusive** otherwise. The sign test (exact, one-sided, zeros dropped) is shown as a "
    "check without the normality assumption; it does not decide. Differences of several runs of one seed "
    "share that seed's data order, so they are not fully independent.")



def _p(value) -> str:
    return format_number(value, ".3g")


def stat_cell(stat: dict, digits: int = 2) -> str:
    """``mean [lo, hi]`` with the interval, else ``mean (min–max)`` and why there is no interval."""
    if stat["mean"] is None:
        return MISSING
    if stat["ci95"] is not None:
        lo, hi = stat["ci95"]
        return f"{stat['mean']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
    if stat["n"] == 1:
        return f"{stat['mean']:.{digits}f} (1 seed)"
    return f"{stat['mean']:.{digits}f} (range {stat['min']:.{digits}f}–{stat['max']:.{digits}f})"


def seeds_table(record: dict) -> str:
    """Markdown text of the aggregate ``record`` (:func:`.aggregate.aggregate`)."""
    seeds = record["seeds"]
    lines = [f"# Training dynamics over {len(seeds)} seed(s) ({record['preset']} preset)", "",
             "Seeds: " + "; ".join(
                 f"{s} ({record['folders'][str(s)]['folder']})" for s in sorted(seeds)) + ".", ""]
    contributing = record["seeds_with_finished_runs"]
    if len(contributing) < len(seeds):
        lines += [f"Seeds with at least one finished run: {', '.join(map(str, contributing)) or 'none'} "
                  "(unfinished runs are left out; see the notes).", ""]
    if len(contributing) < MIN_SEEDS_FOR_INTERVAL:
        lines += [f"**{len(contributing)} seed(s) with finished runs**: means are shown with their range, "
                  "without a 95 % "
                  f"interval (a t-interval needs ≥ {MIN_SEEDS_FOR_INTERVAL} seeds to say more than the "
                  "values themselves).", ""]
    lines += _claims(record["claims"], record) + [""] + _runs(record["runs"]) + [""] + _noise(record["runs"])
    lines += [""] + _raw(record["runs"], seeds)
    if record["notes"]:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in record["notes"]]
    return "\n".join(lines) + "\n"


def _claims(claims: list[dict], record: dict) -> list[str]:
    done = [r["name"] for r in record["runs"] if r["seeds"]]
    single = [n for n in done if n not in record["replicated_runs"]]
    lines = ["## The claims", "",
             "Runs in the pooled tests (0, a, b; for d the soft-label runs among them): those finished in "
             f"≥ {MIN_SEEDS_FOR_VERDICT} seeds: {', '.join(record['replicated_runs']) or 'none yet'}"
             + (f"; finished in one seed only, so left out: {', '.join(single)}" if single else "") + ".", "",
             "| | claim | statistic d | n (seeds) | mean d [95 % CI] | p (t, paper's direction) | "
             "p (t, opposite) | p (sign) | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in claims:
        lines.append(f"| {c['key']} | {c['claim']} | {c['statistic']} | {c['n']} ({c['n_seeds']}) | "
                     f"{stat_cell(c['summary'])} | {_p(c['p_paper'])} | {_p(c['p_opposite'])} | "
                     f"{_p(c['p_sign'])} | **{c['verdict']}**: {c['reason']} |")
    return lines + ["", DECISION_RULE]


def _runs(runs: list[dict]) -> list[str]:
    lines = ["## Per run (finished runs only; one epoch's value each, no smoothing)", "",
             "Best epoch: the highest held-out PGD-20 robust accuracy. Mean [95 % t-interval] across seeds.",
             "", "| run | seeds | best epoch | CAS at best | CAS at last | best − last CAS | "
             "robust at best (%) | robust at last (%) |", "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        m = r["metrics"]
        if not r["seeds"]:
            lines.append(f"| {r['name']} | none finished | — | — | — | — | — | — |")
            continue
        lines.append(f"| {r['name']} | {', '.join(map(str, r['seeds']))} | {stat_cell(m['best_epoch'], 1)} | "
                     f"{stat_cell(m['cas_best'])} | {stat_cell(m['cas_last'])} | {stat_cell(m['cas_gap'])} | "
                     f"{stat_cell(m['robust_best'], 1)} | {stat_cell(m['robust_last'], 1)} |")
    return lines


def _noise(runs: list[dict]) -> list[str]:
    lines = ["## Measurement noise against training noise", "",
             "Measurement: the mean half-width of the per-epoch 95 % intervals the held-out evaluation "
             "wrote (`runs/<name>/scores/epoch_XXX.json`: Wilson for robust accuracy; a bootstrap for CAS "
             "only where the runs were trained with `eval.intervals: true`, e.g. "
             "`--set eval.intervals=true`; 'not recorded' otherwise). Training: the standard deviation "
             "across seeds.", "",
             "| run | seeds with score files | robust acc ± (points, per epoch) | CAS ± (per epoch) | "
             "sd of CAS at best across seeds | sd of CAS at last across seeds |", "|---|---|---|---|---|---|"]
    for r in runs:
        n = r["noise"]
        cas = format_number(n["cas_half_width"]) if n["cas_half_width"] is not None else (
            "not recorded" if n["seeds_with_score_files"] else "—")
        lines.append(f"| {r['name']} | {', '.join(map(str, n['seeds_with_score_files'])) or 'none'} | "
                     f"{format_number(n['robust_half_width'], '.1f')} | {cas} | "
                     f"{format_number(n['cas_best_sd_across_seeds'])} | "
                     f"{format_number(n['cas_last_sd_across_seeds'])} |")
    return lines


def _raw(runs: list[dict], seeds: list[int]) -> list[str]:
    lines = ["## Every seed (raw): best epoch, CAS at best → last (gap), first-phase rise", "",
             "| run | " + " | ".join(f"seed {s}" for s in sorted(seeds)) + " |",
             "|---|" + "---|" * len(seeds)]
    for r in runs:
        cells = []
        for s in sorted(seeds):
            m = r["per_seed"].get(str(s))
            if m is None:
                cells.append("—")
                continue
            rise = m["rise"]
            rise_text = (f"; rise {rise['start']:.2f} → {rise['first_half']:.2f} "
                         f"(peak {rise['peak_cas']:.2f} at {rise['peak_epoch']})" if rise else "")
            cells.append(f"{m['best_epoch']}: {format_number(m['cas_best'])} → "
                         f"{format_number(m['cas_last'])} ({format_number(m['cas_gap'])}){rise_text}")
        lines.append(f"| {r['name']} | " + " | ".join(cells) + " |")
    return lines
