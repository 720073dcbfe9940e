"""``rb-crossclass demo``: the embedded default job (what ``make demo`` runs)."""

from __future__ import annotations

import argparse
import logging
import time

from .common import int_arg, output_dir_arg

log = logging.getLogger("rb_crossclass.demo")


def register(subparsers, summary: str) -> None:
    p = subparsers.add_parser(
        "demo", help=summary,
        description="The main job on real input, then the theory, with no download: pyautoattack's "
        "standard CIFAR-10 ResNet-18 scored on the first 100 CIFAR-10 test images shipped in the package "
        "(clean and PGD-20 attribution matrices, CAS, heatmaps, a card, a leaderboard row); then the "
        "two-weight robust optimum of the cross-class theory (closed form vs numerical, hard vs soft "
        "labels); a linear network on cross-class Gaussian data trained with pgd_at and "
        "ema_self_distill at a small and a large eps, CAS scored every epoch; AutoAttack evaluation; "
        "RobustBench cards; a leaderboard. Minutes on a CPU, no download.")
    p.add_argument("--out", type=output_dir_arg, default="demo_out", help="output folder (default: demo_out)")
    p.add_argument("--seed", type=int_arg, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import DemoConfig, report_lines, run_demo

    start = time.perf_counter()
    res = run_demo(args.out, DemoConfig(seed=args.seed), log=log.info, progress=not args.no_progress)
    print("\n".join(report_lines(res, time.perf_counter() - start)))
    return 0
