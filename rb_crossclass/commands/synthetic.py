"""``rb-crossclass synthetic crossclass|patch``: the synthetic data models of the theory."""

from __future__ import annotations

import argparse

from ..synthetic import DEFAULT_NET_EPS, DEFAULT_RECIPES
from .common import add_figure_args, eps_arg, figure_style, output_dir_arg, positive_int


def register(subparsers, summary: str) -> None:
    p = subparsers.add_parser(
        "synthetic", help=summary,
        description="Run a synthetic data model of the theory and write JSON results and plots. "
        "'crossclass': the cross-class Gaussian model (two-weight robust optimum in closed form and "
        "numerically, w1/w2 vs eps with and without soft labels; a linear network trained with our "
        "recipes and scored per epoch with CAS). 'patch': robust-sparse / non-robust-dense patch "
        "data with a two-layer smoothed-ReLU CNN, standard vs adversarial training.")
    sub = p.add_subparsers(dest="model", metavar="MODEL", required=True)

    c = sub.add_parser("crossclass", help="cross-class Gaussian model (Wei, Guo & Wang)")
    c.add_argument("--out", type=output_dir_arg, required=True, help="output folder")
    c.add_argument("--eps", type=eps_arg, nargs="+", default=list(DEFAULT_NET_EPS),
                   help="ε values (theory units, ℓ∞) of the network runs (default: 0.1 0.25 0.4); "
                   "the two-weight theory always sweeps 0..μ/2")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--classes", type=int, default=3, help="K of the two-weight theory (>= 3)")
    c.add_argument("--net-classes", type=int, default=10, help="K of the network experiment (>= 3)")
    c.add_argument("--mu", type=float, default=1.0)
    c.add_argument("--sigma", type=float, default=0.4)
    c.add_argument("--alpha", type=float, default=0.4,
                   help="soft-label mass of the theory's soft margin loss and of label_smoothing")
    c.add_argument("--lam", type=float, default=1.0, help="L2 penalty of the theory")
    c.add_argument("--recipes", nargs="+", default=list(DEFAULT_RECIPES))
    c.add_argument("--epochs", type=int, default=10)
    c.add_argument("--hidden", type=int, default=0, help="hidden width (0: linear network)")
    c.add_argument("--n-train", type=int, default=4000)
    c.add_argument("--n-test", type=int, default=1000)
    c.add_argument("--no-network", action="store_true", help="only the two-weight theory")
    add_figure_args(c)
    c.set_defaults(func=run_crossclass)

    q = sub.add_parser("patch", help="robust-sparse / non-robust-dense patch model (Li & Li)")
    q.add_argument("--out", type=output_dir_arg, required=True, help="output folder")
    q.add_argument("--eps", type=eps_arg, default=0.75, help="per-patch ℓ2 radius in span(v) (default 0.75)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--steps", type=positive_int, default=600)
    q.add_argument("--n-train", type=int, default=500)
    q.add_argument("--n-test", type=int, default=2000)
    q.add_argument("--classes", type=int, default=4)
    add_figure_args(q)
    q.set_defaults(func=run_patch)


def run_crossclass(args: argparse.Namespace) -> int:
    from ..synthetic import run_crossclass_study

    report = run_crossclass_study(
        args.out, classes=args.classes, net_classes=args.net_classes, mu=args.mu, sigma=args.sigma,
        alpha=args.alpha, lam=args.lam, recipes=args.recipes, eps=args.eps, epochs=args.epochs,
        hidden=args.hidden, n_train=args.n_train, n_test=args.n_test, seed=args.seed,
        network=not args.no_network, style=figure_style(args))
    print("\n".join(report.lines))
    return 0


def run_patch(args: argparse.Namespace) -> int:
    from ..synthetic import run_patch_study

    report = run_patch_study(args.out, classes=args.classes, eps=args.eps, steps=args.steps,
                             n_train=args.n_train, n_test=args.n_test, seed=args.seed,
                             style=figure_style(args))
    print("\n".join(report.lines))
    return 0
