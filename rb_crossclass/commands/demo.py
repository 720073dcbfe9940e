"""``rb-crossclass demo``: the embedded default job (what ``make demo`` runs)."""

from __future__ import annotations

import argparse
import logging
import time

from .common import output_dir_arg

log = logging.getLogger("rb_crossclass.demo")


def register(subparsers, summary: str) -> None:
    p = subparsers.add_parser(
        "demo", help=summary,
        description="Run the cross-class theory end to end through the real pipeline, with no download: "
        "two-weight robust optimum (closed form vs numerical, hard vs soft labels); a linear network on "
        "cross-class Gaussian data trained with pgd_at and ema_self_distill at a small and a large eps, "
        "CAS scored every epoch; AutoAttack evaluation; RobustBench cards; a leaderboard. "
        "A few minutes on 2 CPU cores.")
    p.add_argument("--out", type=output_dir_arg, default="demo_out", help="output folder (default: demo_out)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import STAGES, DemoConfig, run_demo

    start = time.perf_counter()
    res = run_demo(args.out, DemoConfig(seed=args.seed), log=log.info)
    print(f"rb-crossclass demo: {len(res.stages_done)}/{len(STAGES)} stages in "
          f"{time.perf_counter() - start:.0f}s, outputs in {res.out_dir}/")
    for stage, path in res.outputs.items():
        print(f"  {stage:<12} {path}")
    print("summary:")
    for line in res.summary:
        print(f"  {line}")
    return 0
