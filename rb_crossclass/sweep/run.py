"""A sweep end to end: :func:`run_sweep` scores every model of a leaderboard or manifest and
rebuilds the leaderboard; :func:`plan_sweep` decides applicability without weights.

Outputs of ``run_sweep(out, ...)``:

- ``out/cards/<dataset>/<threat_model>/<Name>.json`` — one validated card per scored model
  (RobustBench's folder layout: ``rb-crossclass leaderboard --cards out/cards`` reads it);
- ``out/results/<Name>.json`` — the full result of each scored model (per-point flags, seconds
  per stage, the PGD-20 and AutoAttack cross-class records);
- ``out/sweep.json`` — per model status, reason, seconds, passes, device (:mod:`.record`);
- ``out/state/<Name>/`` — with ``autoattack``, the AutoAttack progress of a model not yet
  finished (per attack and batch): an interrupted sweep resumes the model where it stopped;
- ``out/leaderboard/`` — rebuilt at the end from the official cards (``official_cards``) plus
  ``out/cards``.

Rerunning the same sweep resumes it: finished models are skipped, failed ones run again.
"""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.datasets import BOARD_DATASETS
from ..core.formatting import format_number
from ..core.names import check_model_id
from ..core.threat import NORMS, ThreatModelError, check_eps, check_threat_model, default_eps
from .data import SplitCache
from .engines import EngineOptions, get_engine
from .jobs import JobResult, ModelJob, SweepError, SweepSettings
from .manifest import load_manifest
from .plan import PlanEntry, write_plan
from .record import SweepRecord

log = logging.getLogger(__name__)


@dataclass
class Sweep:
    """What a sweep covers: its board and its jobs (before ``--models`` selection)."""

    source: dict[str, Any]
    dataset: str
    threat_model: str
    eps: float | None  # None on a corruptions board (nothing to attack)
    jobs: list[ModelJob]
    official_cards: Path | None = None
    extra_eps: tuple[float, ...] = ()


@dataclass
class SweepReport:
    """What :func:`run_sweep` did: per model its ``sweep.json`` entry (``rows``), the counts over
    the selected models, how many were skipped as finished earlier, and the leaderboard folder."""

    out: Path
    dataset: str
    threat_model: str
    eps: float
    rows: dict[str, dict[str, Any]]
    counts: dict[str, int]
    resumed: int
    leaderboard: Path | None
    settings: dict[str, Any] = field(default_factory=dict)
    leaderboard_note: str = ""  # why no leaderboard was built, when none was


@dataclass
class PlanReport:
    """What :func:`plan_sweep` found; ``files`` are ``plan.json`` and ``plan.md``."""

    entries: list[PlanEntry]
    files: tuple[Path, Path]


# --------------------------------------------------------------------------- what to sweep
def parse_board(text: str) -> tuple[str, str]:
    """``"cifar10:Linf"`` -> ``("cifar10", "Linf")`` (a RobustBench board)."""
    dataset, sep, threat_model = text.partition(":")
    if not sep or dataset not in BOARD_DATASETS:
        raise SweepError(f"--robustbench takes DATASET:THREAT_MODEL with a dataset of robustbench's zoo "
                         f"({', '.join(BOARD_DATASETS)}), e.g. cifar10:Linf; got {text[:60]!r}")
    check_threat_model(threat_model)
    return dataset, threat_model


def robustbench_boards() -> list[tuple[str, str]]:
    """Every ``(dataset, threat_model)`` board of the installed robustbench's model zoo."""
    from ..compat import import_robustbench

    import_robustbench()
    from robustbench.model_zoo import model_dicts

    return [(ds.value, tm.value) for ds, boards in model_dicts.items() for tm in boards]


def robustbench_sweep(dataset: str, threat_model: str, official_cards: str | os.PathLike | None = None,
                      eps: float | None = None) -> Sweep:
    """The entries of robustbench's zoo for one board, each pre-filled from its official card when
    ``official_cards`` (a ``model_info`` folder) has one."""
    from ..cards import load_card, official_card_path
    from ..compat import official_cards_dir
    from ..models.sources.robustbench import zoo_entries

    folder = official_cards_dir(official_cards) if official_cards is not None else None
    jobs = []
    for name in zoo_entries(dataset, threat_model):
        check_model_id(name, f"robustbench entry {name!r}")
        card: dict = {}
        if folder is not None:
            path = official_card_path(folder, dataset, threat_model, name)
            if path.is_file():
                card = load_card(path)
            else:
                log.info("no official card %s", path)
        jobs.append(ModelJob(name=name, source=f"robustbench:{name}", card=card))
    if eps is None and threat_model in NORMS:
        eps = default_eps(threat_model)
    return Sweep({"robustbench": f"{dataset}:{threat_model}"}, dataset, threat_model, eps, jobs, folder)


def manifest_sweep(path: str | os.PathLike, official_cards: str | os.PathLike | None = None,
                   eps: float | None = None) -> Sweep:
    """The models of a manifest file (see :mod:`.manifest`)."""
    from ..compat import official_cards_dir
    from ..models.checkpoint import sha256_file

    m = load_manifest(path)
    folder = official_cards_dir(official_cards) if official_cards is not None else None
    source = {"manifest": str(Path(path).resolve()), "manifest_sha256": sha256_file(path)}
    return Sweep(source, m.dataset, m.threat_model, m.eps if eps is None else eps, list(m.jobs), folder,
                 m.extra_eps)


def select(jobs: Sequence[ModelJob], names: Sequence[str] | None) -> list[ModelJob]:
    """The jobs named in ``names`` (all when ``None``), in the sweep's order; unknown names are an
    error listing close ones."""
    if not names:
        return list(jobs)
    known = {j.name: j for j in jobs}
    unknown = [n for n in names if n not in known]
    if unknown:
        close = [k for k in known if any(u.lower()[:6] in k.lower() for u in unknown)][:5]
        hint = f"close: {', '.join(close)}" if close else f"e.g. {', '.join(list(known)[:4])}"
        raise SweepError(f"--models: no model(s) {unknown[:5]} in this sweep ({hint})")
    wanted = set(names)
    return [j for j in jobs if j.name in wanted]


def _sweep_of(robustbench: str | None, manifest: str | os.PathLike | None,
              official_cards: str | os.PathLike | None, eps: float | None) -> Sweep:
    if (robustbench is None) == (manifest is None):
        raise SweepError("give exactly one of --robustbench DATASET:THREAT_MODEL and --manifest FILE.yaml")
    if robustbench is not None:
        sweep = robustbench_sweep(*parse_board(robustbench), official_cards=official_cards, eps=eps)
    else:
        sweep = manifest_sweep(manifest, official_cards=official_cards, eps=eps)
    if eps is not None:
        try:
            check_eps(eps, sweep.threat_model)
        except ThreatModelError as err:
            raise SweepError(f"--eps: {err}") from err
    return sweep


# --------------------------------------------------------------------------- running
def run_sweep(
    out: str | os.PathLike,
    *,
    robustbench: str | None = None,
    manifest: str | os.PathLike | None = None,
    models: Sequence[str] | None = None,
    model_dir: str | os.PathLike = "./models",
    official_cards: str | os.PathLike | None = None,
    data_dir: str | None = None,
    n_examples: int | None = None,
    eps: float | None = None,
    autoattack: bool = False,
    aa_version: str = "standard",
    batch_size: int = 250,
    engine: str = "local",
    ray_address: str | None = None,
    gpus_per_model: float = 0.0,
    cpus_per_model: int | None = None,
    progress: bool = True,
    aa_exact: bool = False,
    version: str | None = None,
) -> SweepReport:
    """Score every model of a RobustBench board (``robustbench="cifar10:Linf"``) or of a manifest
    (``manifest="models.yaml"``) and rebuild the leaderboard; resumable (see the module docstring).

    Per model: applicability (not-applicable models are recorded with the reason), clean accuracy
    and the cross-class scores (PGD-20 protocol) on the first ``n_examples`` test points, with
    ``autoattack`` also AutoAttack ``aa_version`` (``version`` is its deprecated name, with a
    :class:`DeprecationWarning`) and CAS on its examples. ``data_dir`` is the
    dataset's folder, or ``npz:PATH`` for a file holding the dataset's first test points.
    ``engine``: ``local`` or ``ray`` (:mod:`.engines`). ``aa_exact``: AutoAttack with bare
    pyautoattack's arithmetic (:class:`~rb_crossclass.sweep.jobs.SweepSettings`). Raises
    :class:`~rb_crossclass.sweep.jobs.SweepError` for bad arguments; a model's failure is recorded,
    never raised.
    """
    from ..cards import write_card
    from ..core.io import atomic_write_json
    from ..core.progress import progress_bar
    from ..evaluate import AutoAttackConfig

    if version is not None:
        warnings.warn("run_sweep(version=...) is deprecated; use aa_version=", DeprecationWarning,
                      stacklevel=2)
        aa_version = version
    if robustbench == "all":
        raise SweepError("--robustbench all is for --plan; score one board at a time (e.g. cifar10:Linf)")
    run_engine = get_engine(engine)
    sweep = _sweep_of(robustbench, manifest, official_cards, eps)
    if sweep.threat_model not in NORMS:
        raise SweepError(f"{sweep.dataset}:{sweep.threat_model} has no radius to attack in: the cross-class "
                         f"protocol attacks in {' or '.join(NORMS)} (a corruptions board can be planned with "
                         "--plan)")
    jobs = select(sweep.jobs, models)
    if autoattack:  # check the AutoAttack settings once, before any model
        AutoAttackConfig(norm=sweep.threat_model, eps=sweep.eps, version=aa_version, batch_size=batch_size)
    npz = bool(data_dir) and str(data_dir).startswith("npz:")
    data, folder = (str(data_dir), None) if npz else (sweep.dataset, data_dir)
    if folder is not None:
        folder = str(Path(folder).resolve())
    if data.startswith("npz:"):
        data = "npz:" + str(Path(data[4:]).resolve())
    out = Path(out)
    settings = SweepSettings(
        dataset=sweep.dataset, threat_model=sweep.threat_model, eps=sweep.eps, n_examples=n_examples,
        data=data, data_dir=folder, model_dir=str(Path(model_dir).resolve()), autoattack=autoattack,
        aa_version=aa_version, batch_size=batch_size, threads=cpus_per_model, progress=progress,
        state_dir=str((out / "state").resolve()) if autoattack else None, extra_eps=sweep.extra_eps,
        aa_exact=aa_exact,
    )
    splits = SplitCache(settings)  # ImageNet: one read per distinct preprocessing of the models
    splits(jobs[0] if jobs else None)  # the data is checked before any model
    record = SweepRecord(out, sweep.source, settings.fingerprint())
    todo = [j for j in jobs if not record.finished(j.name) and j.name not in record.killed]
    resumed = len(jobs) - len(todo) - len([j for j in jobs if j.name in record.killed])
    for name in record.killed:
        log.warning("%s: %s; not started again in this run (rerun the sweep to retry it)", name,
                    record.models[name]["reason"])
    record.save(engine)
    cards_dir = out / "cards" / sweep.dataset / sweep.threat_model
    bar = progress_bar(total=len(jobs), initial=len(jobs) - len(todo), desc="models", unit="model",
                       disable=not progress)

    def on_result(result: JobResult) -> None:
        card_path = None
        if result.status == "done":
            card_path = cards_dir / f"{result.name}.json"
            write_card(result.card, card_path)
            atomic_write_json(out / "results" / f"{result.name}.json", result.record)
            state = settings.model_state_dir(result.name)
            if state is not None:  # the card holds everything the resume state was for
                shutil.rmtree(state, ignore_errors=True)
        record.add(result, card_path)
        bar.update(1)
        bar.write(_result_line(result))

    try:
        run_engine(todo, settings, on_result, EngineOptions(
            ray_address=ray_address, gpus_per_model=gpus_per_model, cpus_per_model=cpus_per_model,
            split=splits, on_start=lambda job: record.start(job.name)))
    finally:
        bar.close()
    board, board_note = _rebuild_leaderboard(out, sweep, cards_dir)
    names = [j.name for j in jobs]
    return SweepReport(out=out, dataset=sweep.dataset, threat_model=sweep.threat_model, eps=sweep.eps,
                       rows={n: record.models.get(n, {"status": "pending"}) for n in names},
                       counts=record.counts(names), resumed=resumed, leaderboard=board,
                       settings=settings.fingerprint(), leaderboard_note=board_note)


def _rebuild_leaderboard(out: Path, sweep: Sweep, cards_dir: Path) -> tuple[Path | None, str]:
    """Rebuild ``out/leaderboard``; ``(None, why)`` when there is nothing to rank: no scored model,
    or only PGD-20 scores (no ``--autoattack``) and no official cards to take accuracies from."""
    from ..cards import load_card
    from ..leaderboard import build_leaderboard

    cards = sorted(cards_dir.glob("*.json")) if cards_dir.is_dir() else []
    if not cards:
        return None, "no model was scored"
    if sweep.official_cards is None and not any("autoattack_acc" in load_card(p) for p in cards):
        advice = ("rerun with --autoattack" if "manifest" in sweep.source else
                  "rerun with --autoattack, or give --official-cards to rank them by the official accuracies")
        return None, f"no leaderboard: the cards hold PGD-20 cross-class scores only; {advice}"
    dirs = ([sweep.official_cards] if sweep.official_cards is not None else []) + [out / "cards"]
    build_leaderboard(dirs, sweep.dataset, sweep.threat_model, out / "leaderboard")
    return out / "leaderboard", ""


def _pct(value: float | None) -> str:
    return format_number(value, ".2f", scale=100)


def _num(value: float | None) -> str:
    return format_number(value, ".2f")


def _result_line(result: JobResult) -> str:
    if result.status == "done":
        m = result.metrics
        aa = f", AutoAttack {_pct(m.get('autoattack_acc'))}%" if "autoattack_acc" in m else ""
        return (f"{result.name}: done in {result.seconds:.1f} s: clean {_pct(m.get('clean_acc'))}%, "
                f"PGD-20 {_pct(m.get('pgd_robust_acc'))}%{aa}, CAS {_num(m.get('cas_pgd'))}")
    return f"{result.name}: {result.status} ({result.reason})"


def summary_table(report: SweepReport) -> str:
    """One line per model (status, clean, PGD-20 and AutoAttack accuracy in %, CAS under both
    protocols, seconds), then the counts."""
    head = (f"{'model':<40} {'status':<15} {'clean':>7} {'PGD-20':>7} {'AA':>7} {'CAS pgd':>8} "
            f"{'CAS AA':>8} {'seconds':>8}")
    lines = [head, "-" * len(head)]
    for name, row in report.rows.items():
        status = row.get("status", "pending")
        if status == "done":
            m = row.get("metrics") or {}
            lines.append(f"{name[:40]:<40} {status:<15} {_pct(m.get('clean_acc')):>7} "
                         f"{_pct(m.get('pgd_robust_acc')):>7} {_pct(m.get('autoattack_acc')):>7} "
                         f"{_num(m.get('cas_pgd')):>8} {_num(m.get('cas_autoattack')):>8} "
                         f"{row.get('seconds', 0):>8.1f}")
        else:  # the whole message: a reason cut mid-word cannot be acted on
            lines.append(f"{name[:40]:<40} {status:<15} {row.get('reason') or ''}")
    c = report.counts
    lines.append("-" * len(head))
    lines.append(f"{len(report.rows)} models: {c['done']} done, {c['not_applicable']} not applicable, "
                 f"{c['failed']} failed" + (f", {c['pending']} pending" if c["pending"] else "")
                 + (f" ({report.resumed} finished in an earlier run)" if report.resumed else ""))
    lines.append(cost_total_line(report.rows))
    return "\n".join(lines)


def sweep_summary(report: SweepReport) -> str:
    """What ``rb-crossclass sweep`` prints after a sweep: :func:`summary_table`, the files written
    (``sweep.json``, the cards if any model was scored, the leaderboard) and, when a model was
    scored, the leaderboard's note."""
    cards = report.out / "cards"
    lines = [summary_table(report),
             f"wrote {report.out / 'sweep.json'}"
             + (f", cards in {cards}" if any(cards.rglob("*.json")) else ", no cards (no model was scored)")
             + (f", leaderboard {report.leaderboard}" if report.leaderboard else "")]
    if report.leaderboard_note and report.counts.get("done"):
        lines.append(report.leaderboard_note)
    return "\n".join(lines)


def failure_message(report: SweepReport) -> str | None:
    """How many models failed and how to retry them (``None`` when none failed)."""
    failed = report.counts.get("failed", 0)
    return (f"{failed} model(s) failed (reasons above and in sweep.json); rerun the same command to "
            "retry them: exit status 1") if failed else None


def cost_total_line(rows: dict[str, dict]) -> str:
    """What the sweep's models cost together: wall seconds and forward/backward samples through
    the models, summed over every model with a record (done, not applicable or failed), and the
    devices they ran on."""
    seconds = sum(float(r.get("seconds") or 0) for r in rows.values())
    fwd = sum(int((r.get("passes") or {}).get("forward_samples", 0)) for r in rows.values())
    bwd = sum(int((r.get("passes") or {}).get("backward_samples", 0)) for r in rows.values())
    devices = sorted({str(r["device"]) for r in rows.values() if r.get("device")})
    return (f"cost: {seconds:.1f} s of model time, {fwd:,} forward and {bwd:,} backward samples"
            + (f" on {', '.join(devices)}" if devices else ""))


# --------------------------------------------------------------------------- planning
def plan_sweep(
    out: str | os.PathLike,
    *,
    robustbench: str | None = None,
    manifest: str | os.PathLike | None = None,
    models: Sequence[str] | None = None,
    official_cards: str | os.PathLike | None = None,
    contract_max_params: int | None = None,
    progress: bool = True,
) -> PlanReport:
    """Build every model without weights and decide whether the cross-class metric applies
    (:mod:`.plan`); writes ``out/plan.json`` and ``out/plan.md``. ``robustbench="all"`` plans every
    board of the installed robustbench's zoo."""
    from ..core.progress import progress_bar
    from .plan import plan_job, plan_robustbench_entry

    if robustbench == "all" and manifest is None:
        from importlib.metadata import version

        boards = robustbench_boards()
        sweeps = [robustbench_sweep(ds, tm) for ds, tm in boards]
        title = (f"RobustBench model zoo (robustbench {version('robustbench')}): cross-class metric "
                 "applicability")
        source: dict[str, Any] = {"robustbench": "all"}
    else:
        sweeps = [_sweep_of(robustbench, manifest, official_cards, None)]
        title = f"{next(iter(sweeps[0].source.values()))}: cross-class metric applicability"
        source = sweeps[0].source
    if models and len(sweeps) > 1:  # names may sit on several boards: each board keeps its own
        select([j for s in sweeps for j in s.jobs], models)  # (an error for names on no board)
        work = [(s, j) for s in sweeps for j in s.jobs if j.name in set(models)]
    else:
        work = [(s, j) for s in sweeps for j in select(s.jobs, models)]
    entries: list[PlanEntry] = []
    for s, job in progress_bar(work, desc="plan", unit="model", disable=not progress):
        if job.robustbench_name is not None and "robustbench" in s.source:
            entry = plan_robustbench_entry(job.robustbench_name, s.dataset, s.threat_model,
                                           contract_max_params=contract_max_params)
        else:
            entry = plan_job(job, SweepSettings(dataset=s.dataset, threat_model=s.threat_model,
                                                eps=s.eps or 0.0))
        entries.append(entry)
    files = write_plan(out, entries, title, source)
    return PlanReport(entries, files)


def plan_summary(report: PlanReport) -> str:
    """Counts by reason and the models that are not applicable."""
    from .plan import plan_counts

    n = len(report.entries)
    lines = [f"{n} models: " + ", ".join(f"{c} {r}" for r, c in plan_counts(report.entries).items())]
    for e in report.entries:
        if not e.applicable:
            lines.append(f"  {e.dataset}/{e.threat_model}/{e.name}: {e.reason} — {e.detail}")
    lines.append(f"wrote {report.files[0]} and {report.files[1]}")
    return "\n".join(lines)

