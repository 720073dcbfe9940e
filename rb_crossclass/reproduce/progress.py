"""What ``rb-crossclass reproduce`` tells while it trains and after: 'run i of n' with the elapsed
time and an ETA (:class:`RunProgress`, whose ``on_plan`` / ``on_run`` are the callbacks of
:func:`~rb_crossclass.reproduce.reproduce_dynamics`), the command line that resumes a reproduction
(:func:`resume_command`) and the summary of its report (:func:`report_lines`)."""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .dynamics import RunSpec
    from .run import ReproductionReport


def format_duration(seconds: float) -> str:
    """``"1 h 05 min"`` from an hour on, else ``"3 min 07 s"``."""
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {sec:02d} s"


def _print(line: str) -> None:
    print(line, flush=True)


class RunProgress:
    """Progress lines of a reproduction, handed to ``write`` (default: printed, flushed): the plan
    (how many runs to train, over which ``seeds``), then per run 'run i of n' with an ETA (the mean
    time of the runs trained so far) and 'run i of n done' with its time."""

    def __init__(self, seeds: Sequence[int] | None = None, write: Callable[[str], None] = _print,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.seeds, self.write, self.clock = seeds, write, clock
        self.total, self.index, self.durations, self.started = 0, 0, [], None

    def on_plan(self, preset: str, total: int) -> None:
        self.total = total
        if total:
            self.write(f"reproduce dynamics ({preset}): {total} run(s) to train"
                       + (f" over seeds {self.seeds}" if self.seeds is not None else "")
                       + "; Ctrl-C stops, rerunning the same command resumes")

    def on_run(self, seed: int | None, spec: RunSpec, phase: str) -> None:
        where = f"seed {seed}: " if seed is not None else ""
        if phase == "start":
            self.index += 1
            self.started = self.clock()
            if self.durations:
                mean = sum(self.durations) / len(self.durations)
                left = format_duration(mean * (self.total - self.index + 1))
                eta = f"ETA {left} for this and the remaining runs"
            else:
                eta = "ETA after the first run"
            self.write(f"run {self.index} of {self.total}: {where}{spec.name} ({spec.recipe}, "
                       f"eps {spec.eps}); {eta}")
        elif phase == "done" and self.started is not None:
            self.durations.append(self.clock() - self.started)
            self.write(f"run {self.index} of {self.total} done: {where}{spec.name} in "
                       f"{format_duration(self.durations[-1])}")

    def interrupted(self, resume: str) -> str:
        """The message after Ctrl-C: which run stopped, what is kept, and the ``resume`` command."""
        return (f"\ninterrupted during run {self.index} of {self.total}: finished runs are kept, the "
                f"interrupted one continues from its last finished epoch. Resume with:\n  {resume}")


def resume_command(preset: str, out: str | os.PathLike, overrides: Sequence[str] = (),
                   runs: Sequence[str] | None = None, seeds: Sequence[int] | None = None) -> str:
    """The ``rb-crossclass reproduce dynamics`` command line that continues this reproduction."""
    words = ["rb-crossclass", "reproduce", "dynamics", "--preset", str(preset), "--out", str(out)]
    for o in overrides:
        words += ["--set", o]
    if runs:
        words += ["--runs", *runs]
    if seeds:
        words += ["--seeds", *map(str, seeds)]
    return shlex.join(words)


def report_lines(report: ReproductionReport, *, trained: bool = True,
                 out: str | os.PathLike | None = None) -> list[str]:
    """The summary of a reproduction: with ``trained`` the runs trained and skipped; then the files
    written (in ``out``, default ``report.out``) or, for an aggregate of seeds, the seeds; then the table."""
    lines = []
    if trained:
        lines.append(f"reproduce dynamics ({report.preset}): {report.trained} run(s) trained, "
                     f"{report.skipped} already finished, {report.seconds:.0f} s")
    record = report.aggregate
    if record is None:
        lines.append(f"wrote {report.out if out is None else out}/dynamics.json, dynamics.png, table.md")
    else:
        lines.append(f"aggregated seeds {record['seeds']} (with finished runs: "
                     f"{record['seeds_with_finished_runs']}); "
                     f"wrote {', '.join(str(p) for p in report.paths.values())}")
    return [*lines, report.table]
