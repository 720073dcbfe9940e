"""``rb-crossclass sweep``: score every model of a leaderboard or manifest, locally or on Ray."""

from __future__ import annotations

import argparse
import sys

from ..evaluate import VERSIONS
from ..sweep import available_engines
from .common import attack_eps_arg, model_id_arg, non_negative_float, output_dir_arg, positive_int

DESCRIPTION = """\
Score every model of a RobustBench leaderboard (--robustbench cifar10:Linf) or of a manifest of
published models (--manifest FILE.yaml): whether the cross-class metric applies (else the reason),
clean accuracy and the cross-class scores under the paper's PGD-20 protocol, with --autoattack also
AutoAttack. Writes OUT/cards/, OUT/results/, OUT/sweep.json and OUT/leaderboard/. Rerun the same
command to resume. Exit status: 0 when every model is done or not applicable, 1 when any model
failed, 2 for bad arguments. --plan writes the applicability table instead. See docs/commands/sweep.md.
"""


class _DeprecatedVersion(argparse.Action):
    """``--version V``: the old spelling of ``--aa-version V`` (one ``warning:`` line on stderr)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print("warning: sweep --version is deprecated; use --aa-version (same values)", file=sys.stderr)
        setattr(namespace, self.dest, values)


def register(subparsers, summary: str) -> None:
    p = subparsers.add_parser("sweep", help=summary, description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_argument_group("what to sweep").add_mutually_exclusive_group(required=True)
    what.add_argument("--robustbench", metavar="DATASET:THREAT_MODEL",
                      help="the entries of robustbench's model zoo for one board, e.g. cifar10:Linf "
                      "('all' with --plan: every board)")
    what.add_argument("--manifest", metavar="FILE.yaml", help="a manifest of published models (see README)")
    g = p.add_argument_group("models and data")
    g.add_argument("--models", nargs="+", type=model_id_arg, metavar="NAME", help="only these models")
    g.add_argument("--model-dir", default="./models",
                   help="robustbench's checkpoint folder (<dir>/<dataset>/<threat_model>/<Name>.pt); "
                   "also where manifest checkpoints given by URL are downloaded (default ./models)")
    g.add_argument("--official-cards", metavar="DIR",
                   help="RobustBench model_info folder: cards are pre-filled from the official ones and "
                   "the leaderboard holds every official entry")
    g.add_argument("--data-dir", default=None,
                   help="folder of the test set (torchvision layout), or npz:PATH of a file holding its "
                   "first test points")
    g.add_argument("--n-examples", type=positive_int, default=None,
                   help="first N test points (default: the whole test set)")
    s = p.add_argument_group("scoring")
    s.add_argument("--eps", type=attack_eps_arg, default=None,
                   help="attack radius, 8/255 or 0.3 (default: the manifest's, else 8/255 Linf / 0.5 L2)")
    s.add_argument("--autoattack", action="store_true",
                   help="also AutoAttack (RobustBench's protocol) and CAS on its examples")
    versions = [v for v in VERSIONS if v != "custom"]
    s.add_argument("--aa-version", default="standard", choices=versions,
                   help="AutoAttack version, as evaluate's --aa-version (default standard)")
    s.add_argument("--version", dest="aa_version", choices=versions, action=_DeprecatedVersion,
                   help=argparse.SUPPRESS)  # deprecated alias of --aa-version
    s.add_argument("--aa-exact", action="store_true",
                   help="with --autoattack: attack each model as it is, with bare pyautoattack's "
                   "arithmetic (default: a faster copy, same function, other float rounding)")
    s.add_argument("--batch-size", type=positive_int, default=250,
                   help="batch size of every pass (default 250, pyautoattack's)")
    e = p.add_argument_group("engine")
    e.add_argument("--engine", choices=available_engines(), default="local",
                   help="local: one model after another in this process; ray: one Ray task per model "
                   "(or another registered engine, see rb_crossclass.sweep.register_engine)")
    e.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="join this Ray cluster (e.g. auto, ray://head:10001); default: start a local Ray")
    e.add_argument("--gpus-per-model", type=non_negative_float, default=0.0, metavar="F",
                   help="GPUs per Ray task; fractions let small models share a GPU (default 0)")
    e.add_argument("--cpus-per-model", type=positive_int, default=None, metavar="N",
                   help="CPUs per Ray task and torch threads per model (default: 1 per Ray task; all "
                   "for local)")
    o = p.add_argument_group("output")
    o.add_argument("--out", type=output_dir_arg, required=True, metavar="DIR", help="output folder")
    o.add_argument("--plan", action="store_true",
                   help="build every architecture without weights and write the applicability table "
                   "(OUT/plan.json, OUT/plan.md); nothing is scored or downloaded")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..core import check_output_dir
    from ..sweep import failure_message, plan_summary, plan_sweep, run_sweep, sweep_summary

    check_output_dir(args.out)  # before a model is built or a board is read
    if args.plan:
        print(plan_summary(plan_sweep(args.out, robustbench=args.robustbench, manifest=args.manifest,
                                      models=args.models, official_cards=args.official_cards)))
        return 0
    report = run_sweep(
        args.out, robustbench=args.robustbench, manifest=args.manifest, models=args.models,
        model_dir=args.model_dir, official_cards=args.official_cards, data_dir=args.data_dir,
        n_examples=args.n_examples, eps=args.eps, autoattack=args.autoattack, aa_version=args.aa_version,
        batch_size=args.batch_size, engine=args.engine, ray_address=args.ray_address,
        gpus_per_model=args.gpus_per_model, cpus_per_model=args.cpus_per_model, aa_exact=args.aa_exact,
    )
    print(sweep_summary(report))
    if failed := failure_message(report):
        print(failed, file=sys.stderr)
        return 1
    return 0
