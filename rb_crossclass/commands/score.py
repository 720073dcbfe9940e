"""``rb-crossclass score``: attribution matrices, CAS and FSI of a model, as JSON and heatmaps."""

from __future__ import annotations

import argparse

from ..core import PAPER_PGD_STEPS
from .common import (
    add_data_args,
    add_device_args,
    add_figure_args,
    add_model_args,
    add_threat_args,
    arg_type,
    attack_eps_arg,
    compute_settings,
    figure_style,
    model_spec,
    output_dir_arg,
    positive_int,
    resolve_eps,
)

DESCRIPTION = """\
Score a model's cross-class features (Wei, Guo & Wang, ICML 2025): class attribution vectors
A_i = mean over class-i test points of g(x_adv) * W[i], their cosine matrix C and
CAS = sum over i != j of max(C_ij, 0), on adversarial examples of untargeted PGD (paper protocol)
or of any torchattacks attack (--attack torchattacks:PGD:eps=8/255,steps=20, torchattacks:FGSM,
torchattacks:CW:c=1), and on clean inputs; plus our feature-sharing index (FSI, 1..K). Writes
OUT/crossclass.json, OUT/attribution_matrix.png and OUT/attribution_matrix_clean.png; with
--compare OTHER.json also OUT/attribution_matrix_diff.png (this minus other).
"""


def register(subparsers, summary: str) -> None:
    p = subparsers.add_parser("score", help=summary, description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    add_data_args(p)
    add_threat_args(p)
    g = p.add_argument_group("attack")
    g.add_argument("--attack", type=attack_arg, default="pgd", metavar="pgd|none|torchattacks:NAME[:k=v,...]",
                   help="pgd: untargeted PGD on CE with random start (paper protocol; --eps, --steps, "
                   "--step-size); none: clean only; torchattacks:<Name>[:k=v,...]: the examples of any "
                   "torchattacks attack, e.g. torchattacks:PGD:eps=8/255,alpha=2/255,steps=20 or "
                   "torchattacks:FGSM:eps=8/255 (its own arguments; --eps/--steps do not apply)")
    g.add_argument("--steps", type=positive_int, default=PAPER_PGD_STEPS,
                   help=f"PGD steps (default {PAPER_PGD_STEPS}, the paper's; --attack none: clean only)")
    g.add_argument("--step-size", type=attack_eps_arg, default=None,
                   help="PGD step (default eps/4 for Linf, eps/8 for L2)")
    add_device_args(p, batch_help="images per batch (default: 64 on CPU, where small batches stay in the "
                    "caches, 256 on GPU); per-image results do not depend on it on CPU")
    p.add_argument("--no-fold-bn", dest="fold_bn", action="store_false",
                   help="score the model as it is instead of a copy with its eval-mode batch norms folded "
                   "into the convolutions before them (same function, float rounding differs)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the attack's forward and input-backward: a one-off compilation "
                   "(~40 s for a ResNet-18 on CPU); no faster than the default on the CPU measured; "
                   "float rounding differs from the default path")
    g = p.add_argument_group("output")
    g.add_argument("--out", type=output_dir_arg, required=True, metavar="DIR", help="output folder")
    g.add_argument("--compare", metavar="OTHER.json",
                   help="another crossclass.json: also plot this matrix minus its matrix")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--no-intervals", action="store_true",
                   help="skip the bootstrap 95%% intervals of CAS (they keep every point's features)")
    add_figure_args(p)
    p.set_defaults(func=run)


@arg_type
def attack_arg(text: str) -> str:
    """``pgd``, ``none`` or a torchattacks spec (argparse type; the attack class is checked later)."""
    from ..attacks import check_attack_spec  # torch: only when --attack is given

    return check_attack_spec(text)


def run(args: argparse.Namespace) -> int:
    """Score the model (sharded over the ranks under ``torchrun``); rank 0 prints."""
    from ..crossclass import score_source

    run = score_source(
        model_spec(args), args.dataset, args.out, dataset_name=args.dataset_name, data_dir=args.data_dir,
        n_examples=args.n_examples, threat_model=args.threat_model, eps=resolve_eps(args),
        attack=args.attack, steps=args.steps, step_size=args.step_size,
        compute=compute_settings(args, compile=args.compile, fold_bn=args.fold_bn), seed=args.seed,
        compare=args.compare, progress=not args.no_progress, intervals=not args.no_intervals,
        style=figure_style(args))
    if run is not None:
        print("\n".join(run.summary))
        print(f"wrote            {run.files[0]}, " + ", ".join(f.name for f in run.files[1:]))
    return 0
