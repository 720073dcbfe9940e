"""``rb-crossclass reproduce dynamics`` (one seed or several) and ``reproduce dynamics-summary``
(the aggregate of seed folders that exist, without training): the paper's training dynamics with
our own tool."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time

from .common import non_negative_int, output_dir_arg

log = logging.getLogger(__name__)

DESCRIPTION = """Reproduce a claim of Wei, Guo & Wang (ICML 2025) with rb-crossclass itself.
'dynamics': train PGD-AT at several eps and soft-label recipes (KD from the PGD-AT 8/255 run, EMA
self-distillation, label smoothing), recording per epoch the held-out clean accuracy, PGD-20 robust
accuracy and CAS; write DIR/dynamics.json, DIR/dynamics.png, DIR/table.md (CAS and robust accuracy
at an early epoch, mid-training, the best and the last epoch; best-last gaps; gap against eps) and
the best-minus-last attribution-matrix heatmaps. Each run is an ordinary `train` run under
DIR/runs/<name>: rerunning the command skips finished runs and resumes an interrupted one.
With --seeds S1 S2 ..., each seed is such a reproduction in DIR/seed_<s>/ (the base config's
training seed set to s: weight init, data order and attack noise), and DIR/dynamics.json,
DIR/table.md and DIR/dynamics.png aggregate them: means with 95 % t-intervals across seeds (from 3
seeds) and the paper's claims tested with a verdict (reproduced / not reproduced / inconclusive).
'dynamics-summary': that aggregate from seed folders that already exist, without training."""

SUMMARY_DESCRIPTION = """Aggregate existing seed folders of `reproduce dynamics` without training:
each --seed-dirs entry is DIR or SEED=DIR (a folder with runs/<name>/metrics.jsonl, or only a
dynamics.json). Unfinished runs are left out with a note. Writes OUT/dynamics.json, OUT/table.md
and OUT/dynamics.png (the claims' tests and verdicts, per-run means with 95 % intervals across seeds)."""


def register(subparsers, summary: str) -> None:
    p = subparsers.add_parser("reproduce", help=summary, description=DESCRIPTION)
    sub = p.add_subparsers(dest="claim", metavar="CLAIM", required=True)
    d = sub.add_parser("dynamics", help="CAS rises to the best checkpoint and falls with robust overfitting",
                       description=DESCRIPTION)
    d.add_argument("--preset", default="cpu",
                   help="cpu (real partial CIFAR-10, about 90 minutes on 2 CPU cores), paper (the paper's "
                   "setting, a GPU and the full CIFAR-10), or a YAML file of the same form")
    d.add_argument("--out", type=output_dir_arg, required=True, metavar="DIR", help="output folder")
    d.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the preset's base training config, e.g. optim.epochs=3")
    d.add_argument("--runs", nargs="+", default=None, metavar="NAME", help="train only these runs")
    d.add_argument("--seeds", nargs="+", type=non_negative_int, default=None, metavar="S",
                   help="train every seed as its own reproduction in DIR/seed_<s>/ and aggregate them")
    d.add_argument("--aggregate-only", action="store_true",
                   help="with --seeds: train nothing, aggregate the DIR/seed_<s>/ folders as they are")
    d.set_defaults(func=run)
    s = sub.add_parser("dynamics-summary", help="aggregate existing seed folders of `reproduce dynamics`",
                       description=SUMMARY_DESCRIPTION)
    s.add_argument("--seed-dirs", nargs="+", required=True, metavar="[SEED=]DIR",
                   help="one folder per seed; SEED= when the folder does not record its seed")
    s.add_argument("--out", type=output_dir_arg, required=True, metavar="DIR", help="output folder")
    s.add_argument("--preset", default="cpu", help="the preset the seeds ran (names and order of its runs)")
    s.set_defaults(func=run_summary)


class Progress:
    """'run i of n', the elapsed time and an ETA (the mean time of the runs trained so far)."""

    def __init__(self, total: int) -> None:
        self.total, self.index, self.durations, self.started = total, 0, [], None

    def on_run(self, seed: int | None, spec, phase: str) -> None:
        where = f"seed {seed}: " if seed is not None else ""
        if phase == "start":
            self.index += 1
            self.started = time.perf_counter()
            if self.durations:
                mean = sum(self.durations) / len(self.durations)
                eta = f"ETA {_duration(mean * (self.total - self.index + 1))} for this and the remaining runs"
            else:
                eta = "ETA after the first run"
            print(f"run {self.index} of {self.total}: {where}{spec.name} ({spec.recipe}, eps {spec.eps}); "
                  f"{eta}", flush=True)
        elif phase == "done" and self.started is not None:
            self.durations.append(time.perf_counter() - self.started)
            print(f"run {self.index} of {self.total} done: {where}{spec.name} in "
                  f"{_duration(self.durations[-1])}", flush=True)


def _duration(seconds: float) -> str:
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {sec:02d} s"


def resume_command(args: argparse.Namespace) -> str:
    """The command line that continues this reproduction."""
    words = ["rb-crossclass", "reproduce", "dynamics", "--preset", args.preset, "--out", args.out]
    for o in args.overrides:
        words += ["--set", o]
    if args.runs:
        words += ["--runs", *args.runs]
    if args.seeds:
        words += ["--seeds", *map(str, args.seeds)]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    from ..reproduce import reproduce_dynamics

    logging.getLogger("rb_crossclass").setLevel(logging.INFO)
    progress = Progress(0)

    def on_plan(preset: str, total: int) -> None:
        progress.total = total
        if total:
            print(f"reproduce dynamics ({preset}): {total} run(s) to train"
                  + (f" over seeds {args.seeds}" if args.seeds is not None else "")
                  + "; Ctrl-C stops, rerunning the same command resumes", flush=True)

    try:
        report = reproduce_dynamics(args.preset, args.out, overrides=args.overrides, only=args.runs,
                                    seeds=args.seeds, aggregate_only=args.aggregate_only,
                                    on_plan=on_plan, on_run=progress.on_run)
    except KeyboardInterrupt:
        print(f"\ninterrupted during run {progress.index} of {progress.total}: finished runs are kept, the "
              "interrupted one continues from its last finished epoch. Resume with:\n  "
              f"{resume_command(args)}", file=sys.stderr, flush=True)
        raise
    if not args.aggregate_only:
        print(f"reproduce dynamics ({report.preset}): {report.trained} run(s) trained, "
              f"{report.skipped} already finished, {report.seconds:.0f} s")
    if args.seeds is None:
        print(f"wrote {args.out}/dynamics.json, dynamics.png, table.md")
        print(report.table)
        return 0
    _print_aggregate(report)
    return 0


def run_summary(args: argparse.Namespace) -> int:
    from ..reproduce import summarize_seeds

    _print_aggregate(summarize_seeds(args.seed_dirs, args.out, args.preset))
    return 0


def _print_aggregate(report) -> None:
    record = report.aggregate
    print(f"aggregated seeds {record['seeds']} (with finished runs: {record['seeds_with_finished_runs']}); "
          f"wrote {', '.join(str(p) for p in report.paths.values())}")
    print(report.table)
