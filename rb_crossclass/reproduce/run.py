"""A whole reproduction as one call, what ``rb-crossclass reproduce`` runs: a preset with
overrides, one seed or several (each a reproduction of its own in ``DIR/seed_<s>/``), resumable;
and the aggregate of seed folders that already exist.

Nothing here prints: callers follow progress through ``on_plan`` / ``on_run`` and print the
returned :class:`ReproductionReport`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .dynamics import ReproduceError, RunSpec, load_preset

RunCallback = Callable[[int | None, RunSpec, str], None]  # (seed or None, run, "start" | "done")


@dataclass
class ReproductionReport:
    """What a reproduction did: the ``preset`` name, runs ``trained`` and ``skipped`` (finished
    before), wall ``seconds``, the ``out`` folder. ``table`` is the text of ``table.md`` (the
    single-seed table, or the aggregate's); with several seeds ``aggregate`` is the record written
    to ``dynamics.json`` (``seeds``, ``seeds_with_finished_runs``, ...) and ``paths`` its files."""

    preset: str
    out: Path
    trained: int = 0
    skipped: int = 0
    seconds: float = 0.0
    table: str = ""
    aggregate: dict[str, Any] | None = None
    paths: dict[str, Path] = field(default_factory=dict)


def reproduce_dynamics(preset: str | os.PathLike, out: str | os.PathLike, *, overrides: Sequence[str] = (),
                       only: Sequence[str] | None = None, seeds: Sequence[int] | None = None,
                       aggregate_only: bool = False, on_plan: Callable[[str, int], None] | None = None,
                       on_run: RunCallback | None = None) -> ReproductionReport:
    """Train the runs of ``preset`` (``cpu``, ``paper`` or a YAML file) with ``overrides``
    (``KEY=VALUE`` strings of its base training config) into ``out``, and summarize them.

    ``only``: train only these runs. ``seeds``: each seed is a reproduction in ``out/seed_<s>/``
    and ``out`` gets their aggregate (means with 95 % t-intervals, the claims' verdicts);
    ``aggregate_only`` (needs ``seeds``) trains nothing. Finished runs are skipped, an interrupted
    one resumes. ``on_plan(preset_name, n_runs_to_train)`` is called once before training,
    ``on_run(seed, spec, phase)`` around each run (``seed`` is ``None`` without ``seeds``).
    Raises :class:`ReproduceError` for inconsistent arguments (a seed given by ``--set seed=``,
    ``aggregate_only`` without seeds, bad seeds) before anything is trained.
    """
    from ..train import parse_override
    from .dynamics import run_dynamics
    from .seeds import check_seeds, pending_runs, preset_for_seed, run_seeds, seed_folder

    parsed = dict(parse_override(o) for o in overrides)
    if seeds is not None and "seed" in parsed:
        raise ReproduceError("give the seeds with --seeds, not with --set seed=")
    if aggregate_only and seeds is None:
        raise ReproduceError("--aggregate-only needs --seeds (a single seed writes its own summary)")
    loaded = load_preset(str(preset), parsed)
    if seeds is not None:
        check_seeds(seeds)
    start = time.perf_counter()
    out = Path(out)
    if aggregate_only:
        return _aggregate([(s, seed_folder(out, s)) for s in seeds], loaded, out)
    plan = ([(s, seed_folder(out, s), preset_for_seed(loaded, s)) for s in seeds]
            if seeds is not None else [(None, out, loaded)])
    if on_plan is not None:
        on_plan(loaded.name, sum(len(pending_runs(p, folder, only)) for _, folder, p in plan))
    if seeds is not None:
        results = run_seeds(loaded, out, seeds, only=only, on_run=on_run)
    else:
        one = None if on_run is None else lambda spec, phase: on_run(None, spec, phase)
        results = [run_dynamics(loaded, out, only=only, on_run=one)]
    trained, skipped = sum(len(r.trained) for r in results), sum(len(r.skipped) for r in results)
    seconds = time.perf_counter() - start
    if seeds is None:
        return ReproductionReport(loaded.name, out, trained, skipped, seconds,
                                  table=(out / "table.md").read_text(encoding="utf-8"),
                                  paths={"json": out / "dynamics.json", "figure": out / "dynamics.png",
                                         "table": out / "table.md"})
    report = _aggregate([(s, folder) for s, folder, _ in plan], loaded, out)
    report.trained, report.skipped, report.seconds = trained, skipped, seconds
    return report


def summarize_seeds(seed_dirs: Sequence[str], out: str | os.PathLike,
                    preset: str = "cpu") -> ReproductionReport:
    """The aggregate of existing seed folders, without training: each of ``seed_dirs`` is ``DIR``
    or ``SEED=DIR`` (a folder with ``runs/<name>/metrics.jsonl``, or only a ``dynamics.json``);
    unfinished runs are left out with a note. Writes ``out/dynamics.json``, ``table.md`` and
    ``dynamics.png``. Raises :class:`ReproduceError` for unreadable folders or seeds."""
    from .seeds import parse_seed_dir

    return _aggregate([parse_seed_dir(d) for d in seed_dirs], load_preset(preset), Path(out))


def _aggregate(dirs: list[tuple[int | None, Path]], preset, out: Path) -> ReproductionReport:
    from .aggregate import aggregate, write_aggregate
    from .seeds import read_seed_folder

    folders = [read_seed_folder(path, preset, seed) for seed, path in dirs]
    record = aggregate(folders, preset.name)
    paths = write_aggregate(record, out)
    return ReproductionReport(preset.name, out, table=paths["table"].read_text(encoding="utf-8"),
                              aggregate=record, paths=paths)
