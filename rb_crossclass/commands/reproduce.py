"""``rb-crossclass reproduce dynamics``: the paper's training dynamics with our own tool."""

from __future__ import annotations

import argparse
import logging

from .common import output_dir_arg

log = logging.getLogger(__name__)

DESCRIPTION = """Reproduce a claim of Wei, Guo & Wang (ICML 2025) with rb-crossclass itself.
'dynamics': train PGD-AT at several eps and soft-label recipes (KD from the PGD-AT 8/255 run, EMA
self-distillation, label smoothing), recording per epoch the held-out clean accuracy, PGD-20 robust
accuracy and CAS; write DIR/dynamics.json, DIR/dynamics.png, DIR/table.md (CAS and robust accuracy
at an early epoch, mid-training, the best and the last epoch; best-last gaps; gap against eps) and
the best-minus-last attribution-matrix heatmaps. Each run is an ordinary `train` run under
DIR/runs/<name>: rerunning the command skips finished runs and resumes an interrupted one."""


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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    from ..reproduce import load_preset, run_dynamics
    from ..train.config import parse_override

    overrides = dict(parse_override(o) for o in args.overrides)
    preset = load_preset(args.preset, overrides)
    start = time.perf_counter()
    logging.getLogger("rb_crossclass").setLevel(logging.INFO)

    def on_run(spec, phase: str) -> None:
        if phase == "start":
            print(f"training {spec.name} ({spec.recipe}, eps {spec.eps})", flush=True)

    result = run_dynamics(preset, args.out, only=args.runs, on_run=on_run)
    print(f"reproduce dynamics ({preset.name}): {len(result.trained)} run(s) trained, "
          f"{len(result.skipped)} already finished, {time.perf_counter() - start:.0f} s")
    print(f"wrote {args.out}/dynamics.json, dynamics.png, table.md")
    print(open(f"{args.out}/table.md", encoding="utf-8").read())
    return 0
