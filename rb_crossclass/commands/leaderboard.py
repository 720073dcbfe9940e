"""``rb-crossclass leaderboard``: an extended leaderboard from official and our cards."""

from __future__ import annotations

import argparse

from ..core import KNOWN_DATASETS, THREAT_MODELS
from ..leaderboard import SORT_CHOICES, build_leaderboard
from .common import add_figure_args, eps_arg, figure_style, output_dir_arg

DESCRIPTION = """Build an extended leaderboard (index.html, README.md, leaderboard.json,
cas_vs_robust.png) from RobustBench cards and ours. Each --cards folder is read as
<DIR>/<dataset>/<threat_model>/*.json when that folder exists (RobustBench's model_info layout,
and model_zoo/), else as <DIR>/*.json filtered by dataset and threat model. Cards with the same
model ID (file name) are merged: our measured blocks are attached to the official entry. The
default order is RobustBench's (best known robust accuracy, descending; ties in file order:
folders as given, sorted file names). The output folder is replaced atomically; a bad card
aborts with an error naming it and leaves the previous output intact. A board holds one eps per
threat model: cards at several radii are refused unless --eps picks one (the others are left out
with a warning). Every row shows its N and eps; rows measured on different N or with a different
attack form separate comparability groups, and the Tier column groups the entries of a group that
cannot be told apart at 95 % (McNemar's exact test on per-point results, else a two-proportion
z-test; Holm's correction)."""


def register(subparsers, summary: str) -> None:
    p = subparsers.add_parser("leaderboard", help=summary, description=DESCRIPTION)
    p.add_argument("--cards", action="append", required=True, metavar="DIR",
                   help="a folder of cards (repeatable; official cards first, e.g. a clone's "
                   "robustbench/model_info), or zoo: for our model zoo's cards")
    p.add_argument("--dataset", default="cifar10", help=" | ".join(KNOWN_DATASETS) + " (default cifar10)")
    p.add_argument("--eps", type=eps_arg, default=None, metavar="EPS",
                   help="the board's radius, e.g. 2/255 (default: the one radius all cards share)")
    p.add_argument("--threat-model", default="Linf", choices=THREAT_MODELS,
                   help="the board: " + ", ".join(THREAT_MODELS))
    p.add_argument("--sort-by", default="robust", choices=SORT_CHOICES,
                   help="robust (RobustBench's order, default), clean, cas or fsi; descending")
    p.add_argument("--out", type=output_dir_arg, required=True, metavar="DIR",
                   help="output folder (replaced atomically)")
    add_figure_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = build_leaderboard(args.cards, args.dataset, args.threat_model, args.out, sort_by=args.sort_by,
                               style=figure_style(args), eps=args.eps)
    print(result.summary())
    return 0
