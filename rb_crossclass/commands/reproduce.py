"""``rb-crossclass reproduce dynamics`` (one seed or several) and ``reproduce dynamics-summary``
(the aggregate of seed folders that exist, without training): the paper's training dynamics with
our own tool."""

from __future__ import annotations

import argparse
import logging
import sys

from .common import non_negative_int, output_dir_arg

DESCRIPTION = """Reproduce a claim of Wei, Guo & Wang (ICML 2025) with rb-crossclass itself.
'dynamics': train PGD-AT at several eps and soft-label recipes, recording per epoch the held-out clean
accuracy, PGD-20 robust accuracy and CAS; write DIR/dynamics.json, DIR/dynamics.png and DIR/table.md.
Rerunning the command skips finished runs and resumes an interrupted one. With --seeds, each seed is a
reproduction in DIR/seed_<s>/ and DIR gets their aggregate (95 % intervals, the claims' verdicts).
'dynamics-summary': that aggregate from seed folders that already exist. See docs/commands/reproduce.md."""


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
                       description="Aggregate existing seed folders of `reproduce dynamics` without "
                       "training; writes OUT/dynamics.json, OUT/table.md and OUT/dynamics.png.")
    s.add_argument("--seed-dirs", nargs="+", required=True, metavar="[SEED=]DIR",
                   help="one folder per seed (runs/<name>/metrics.jsonl or a dynamics.json); SEED= when "
                   "the folder does not record its seed")
    s.add_argument("--out", type=output_dir_arg, required=True, metavar="DIR", help="output folder")
    s.add_argument("--preset", default="cpu", help="the preset the seeds ran (names and order of its runs)")
    s.set_defaults(func=run_summary)


def run(args: argparse.Namespace) -> int:
    from ..reproduce import RunProgress, report_lines, reproduce_dynamics, resume_command

    logging.getLogger("rb_crossclass").setLevel(logging.INFO)
    progress = RunProgress(args.seeds)
    try:
        report = reproduce_dynamics(args.preset, args.out, overrides=args.overrides, only=args.runs,
                                    seeds=args.seeds, aggregate_only=args.aggregate_only,
                                    on_plan=progress.on_plan, on_run=progress.on_run)
    except KeyboardInterrupt:
        resume = resume_command(args.preset, args.out, args.overrides, args.runs, args.seeds)
        print(progress.interrupted(resume), file=sys.stderr, flush=True)
        raise
    print("\n".join(report_lines(report, trained=not args.aggregate_only, out=args.out)))
    return 0


def run_summary(args: argparse.Namespace) -> int:
    from ..reproduce import report_lines, summarize_seeds

    print("\n".join(report_lines(summarize_seeds(args.seed_dirs, args.out, args.preset), trained=False)))
    return 0
