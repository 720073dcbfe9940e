"""The aggregate of several seeds of one reproduction: per run, the best epoch, CAS at the best and
the last epoch and their gap, each as a mean with its 95 % t-interval across seeds (none with fewer
than 3 seeds); the two kinds of noise told apart (measurement: the mean half-width of the per-epoch
95 % intervals the held-out evaluation wrote; training: the spread across seeds); the claim tests
(:mod:`.claims`); written as ``DIR/dynamics.json`` (``"kind": "seeds"``), ``DIR/table.md`` and
``DIR/dynamics.png``.

Only finished runs are aggregated: a run still training (or never started) in some seed is left
out for that seed, and a note says so. Nothing is smoothed: every number is one epoch's value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from ..core.io import atomic_write_json, atomic_write_text
from .claims import replicated, run_claims
from .dynamics import ReproduceError
from .seeds import SeedFolder
from .stats import summarize
from .tables import milestones

METRICS = ("best_epoch", "cas_best", "cas_last", "cas_gap", "robust_best", "robust_last", "robust_gap")


def first_phase_rise(epochs: Sequence[dict]) -> dict | None:
    """CAS at the start (mean of epochs 1-2) against the first half of training (mean of epochs 3 to
    ⌊last/2⌋), and the first half's raw peak. The mean rather than the peak is tested: the maximum of
    noisy epochs is biased upwards, so a flat but noisy series would seem to rise. ``None`` when a
    part has no CAS."""
    last = max((e["epoch"] for e in epochs), default=0)
    start = [e["cas"] for e in epochs if e["epoch"] <= 2 and e.get("cas") is not None]
    half = [e for e in epochs if 2 < e["epoch"] <= last // 2 and e.get("cas") is not None]
    if not start or not half:
        return None
    peak = max(half, key=lambda e: (e["cas"], -e["epoch"]))
    start_mean, half_mean = sum(start) / len(start), sum(e["cas"] for e in half) / len(half)
    return {"start": start_mean, "first_half": half_mean, "rise": half_mean - start_mean,
            "first_half_epochs": [half[0]["epoch"], half[-1]["epoch"]],
            "peak_epoch": peak["epoch"], "peak_cas": peak["cas"]}


def seed_milestones(run: dict) -> dict | None:
    """One finished run of one seed: best epoch (highest held-out robust accuracy, the first of a
    tie), CAS and robust accuracy (%) at the best and last epochs, their gaps, the first-phase rise."""
    m = milestones(run)
    if m is None:
        return None
    best, last = m["best"], m["last"]
    gap = best["cas"] - last["cas"] if None not in (best["cas"], last["cas"]) else None
    return {"best_epoch": best["epoch"], "last_epoch": last["epoch"], "cas_best": best["cas"],
            "cas_last": last["cas"], "cas_gap": gap, "robust_best": best["robust_acc"],
            "robust_last": last["robust_acc"], "robust_gap": best["robust_acc"] - last["robust_acc"],
            "rise": first_phase_rise(run["epochs"])}


def measurement_noise(score_files: Sequence[str]) -> dict:
    """Mean half-width of the per-epoch 95 % intervals in a run's ``scores/epoch_XXX.json``: robust
    accuracy (Wilson, percentage points) and CAS (bootstrap) where the evaluation wrote one."""
    robust, cas = [], []
    for path in score_files:
        try:
            intervals = json.loads(Path(path).read_text(encoding="utf-8")).get("intervals") or {}
        except (OSError, json.JSONDecodeError):  # a file being written by a running job
            continue
        if _pair(intervals.get("robust_accuracy")):
            lo, hi = intervals["robust_accuracy"]
            robust.append(100 * (hi - lo) / 2)
        if _pair(intervals.get("cas")):
            lo, hi = intervals["cas"]
            cas.append((hi - lo) / 2)
    return {"score_files": len(score_files),
            "robust_half_width": sum(robust) / len(robust) if robust else None,
            "cas_half_width": sum(cas) / len(cas) if cas else None, "cas_intervals": len(cas)}


def _pair(value) -> bool:
    return (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int | float) and math.isfinite(v) for v in value))


def aggregate(folders: Sequence[SeedFolder], preset_name: str) -> dict:
    """The aggregate record (see the module docstring) of ``folders``, one per seed."""
    if not folders:
        raise ReproduceError("no seed folder to aggregate")
    seeds = [f.seed for f in folders]
    if len(set(seeds)) != len(seeds):
        raise ReproduceError(f"the same seed appears twice among the folders: {seeds}")
    folders = sorted(folders, key=lambda f: f.seed)  # the aggregate does not depend on the order given
    seeds = sorted(seeds)
    names: list[str] = []
    info: dict[str, dict] = {}
    for f in folders:
        for r in f.runs:
            if r["name"] not in info:
                names.append(r["name"])
                info[r["name"]] = {"recipe": r["recipe"], "eps": r["eps"], "teacher": r.get("teacher")}
    notes: list[str] = []
    runs, per_seed = [], {}
    for name in names:
        used, series, noise = {}, {}, {}
        for f in folders:
            run = next((r for r in f.runs if r["name"] == name), None)
            if f.score_files.get(name):  # measurement noise needs no finished run
                noise[f.seed] = measurement_noise(f.score_files[name])
            if run is None or not run["epochs"]:
                notes.append(f"seed {f.seed}: {name} not started, left out")
                continue
            if not run["finished"]:
                notes.append(f"seed {f.seed}: {name} unfinished (at epoch {run['epochs'][-1]['epoch']}), "
                             "left out")
                continue
            m = seed_milestones(run)
            if m is None:
                continue
            used[f.seed], series[f.seed] = m, run["epochs"]
        per_seed[name] = used
        runs.append({"name": name, **info[name], "seeds": sorted(used),
                     "metrics": {k: summarize([m[k] for m in used.values()], len(used)).to_dict()
                                 for k in METRICS},
                     "per_seed": {str(s): m for s, m in used.items()},
                     "noise": _noise_summary(used, noise),
                     "curves": _curves(series, notes, name)})
    claims = run_claims(per_seed, info)
    contributing = sorted({s for used in per_seed.values() for s in used})
    return {"kind": "seeds", "preset": preset_name, "seeds": seeds, "seeds_with_finished_runs": contributing,
            "folders": {str(f.seed): {"folder": f.folder, "sources": f.sources} for f in folders},
            "replicated_runs": replicated(per_seed, names), "runs": runs,
            "claims": [c.to_dict() for c in claims], "notes": notes}


def _noise_summary(used: dict[int, dict], noise: dict[int, dict]) -> dict:
    """Measurement noise (per-epoch intervals) next to training noise (spread across seeds)."""
    robust = [n["robust_half_width"] for n in noise.values() if n["robust_half_width"] is not None]
    cas = [n["cas_half_width"] for n in noise.values() if n["cas_half_width"] is not None]
    sd = summarize([m["cas_last"] for m in used.values()], len(used)).sd
    return {"seeds_with_score_files": sorted(noise),
            "robust_half_width": sum(robust) / len(robust) if robust else None,
            "cas_half_width": sum(cas) / len(cas) if cas else None,
            "cas_last_sd_across_seeds": sd,
            "cas_best_sd_across_seeds": summarize([m["cas_best"] for m in used.values()], len(used)).sd}


def _curves(series: dict[int, list[dict]], notes: list[str], name: str) -> dict:
    """Per epoch (those every seed evaluated): mean, min and max over seeds of CAS and robust
    accuracy, and every seed's raw values."""
    if not series:
        return {"epochs": [], "seeds": {}}
    common = sorted(set.intersection(*({e["epoch"] for e in s} for s in series.values())))
    lengths = {len(s) for s in series.values()}
    if len(lengths) > 1:
        notes.append(f"{name}: seeds ran different numbers of epochs {sorted(lengths)}; curves use the "
                     f"{len(common)} epochs all have")
    out: dict = {"epochs": common, "seeds": {}}
    for key in ("cas", "robust_acc"):
        rows = {s: {e["epoch"]: e.get(key) for e in ser} for s, ser in series.items()}
        values = [[rows[s][ep] for s in sorted(rows)] for ep in common]
        ok = [[v for v in col if v is not None] for col in values]
        out[key] = {"mean": [sum(v) / len(v) if v else None for v in ok],
                    "min": [min(v) if v else None for v in ok], "max": [max(v) if v else None for v in ok]}
        for s in sorted(rows):
            out["seeds"].setdefault(str(s), {})[key] = [rows[s][ep] for ep in common]
    return out


def write_aggregate(record: dict, out: str | Path) -> dict[str, Path]:
    """Write ``dynamics.json``, ``table.md`` and ``dynamics.png`` of the aggregate into ``out``."""
    from ..figures.dynamics import plot_seed_dynamics
    from .seed_tables import seeds_table

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "dynamics.json", "table": out / "table.md"}
    atomic_write_json(paths["json"], record)
    atomic_write_text(paths["table"], seeds_table(record))
    if any(r["curves"]["epochs"] for r in record["runs"]):
        footer = [f"({c['key']}) {c['claim']}: {c['verdict']} (n = {c['n']}, {c['n_seeds']} seeds"
                  + (f", one-sided p = {c['p_paper']:.3g})" if c["p_paper"] is not None else ")")
                  for c in record["claims"] if "." not in c["key"]]
        paths["figure"] = plot_seed_dynamics(record["runs"], out / "dynamics.png",
                                             title=f"Training dynamics over seeds {record['seeds']} "
                                                   f"({record['preset']} preset)", footer=footer)
    return paths
