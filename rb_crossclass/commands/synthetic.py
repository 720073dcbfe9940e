"""``rb-crossclass synthetic crossclass|patch``: the synthetic data models of the theory."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..core.errors import RBCrossclassError
from ..core.io import atomic_write_json
from .common import add_figure_args, eps_arg, figure_style, output_dir_arg, positive_int

log = logging.getLogger(__name__)

DEFAULT_NET_EPS = (0.1, 0.25, 0.4)
DEFAULT_RECIPES = ("pgd_at", "trades", "label_smoothing", "ema_self_distill")


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
    from ..core.progress import progress_bar
    from ..figures.synthetic import plot_cas_curves, plot_linear_theory
    from ..recipes import available_recipes
    from ..synthetic.crossclass_gaussian import CrossClassGaussian, eps_grid, sweep
    from ..synthetic.crossclass_network import run_network_experiment

    out = Path(args.out)
    unknown = [r for r in args.recipes if r not in available_recipes()]
    if unknown:
        raise RBCrossclassError(f"unknown recipe(s) {unknown}; known: {available_recipes()}")
    if "kd" in args.recipes:
        raise RBCrossclassError("recipe 'kd' needs a teacher model; use ema_self_distill here")
    try:
        theory_model = CrossClassGaussian(args.classes, args.mu, args.sigma)
        net_model = CrossClassGaussian(args.net_classes, args.mu, args.sigma)
    except ValueError as err:
        raise RBCrossclassError(str(err)) from err
    if not 0 <= args.alpha < 1:
        raise RBCrossclassError(f"--alpha must be in [0,1), got {args.alpha}")
    out.mkdir(parents=True, exist_ok=True)
    style = figure_style(args)
    theory = sweep(theory_model, eps_grid(theory_model), alpha=args.alpha, lam=args.lam,
                   seed=args.seed, progress=True).to_dict()
    atomic_write_json(out / "linear_theory.json", theory)
    figures = [plot_linear_theory(theory, out / "linear_theory.png", style)]
    lines = [
        f"two-weight theory (K={args.classes}, mu={args.mu:g}, sigma={args.sigma:g}): w2 = 0 above "
        f"eps0 = {theory['eps0']:.3f} (< mu/2 = {args.mu / 2:g}); soft labels (alpha={args.alpha:g}) "
        f"move it to eps1 = {theory['eps_alpha']:.3f}; closed form vs numerical max |diff| = "
        f"{theory['max_abs_error']:.4f}",
    ]
    if not args.no_network:
        total = len(args.eps) * len(args.recipes)
        bar = progress_bar(total=total, desc="train+score", unit="run")

        def on_run(run):
            bar.update(1)
            bar.set_postfix_str(f"{run.recipe} eps={run.eps:g} CAS={run.history[-1].cas:.2f}")

        exp, _ = run_network_experiment(net_model, list(args.recipes), list(args.eps), n_train=args.n_train,
                                         n_test=args.n_test, hidden=args.hidden, epochs=args.epochs,
                                         seed=args.seed, alpha=args.alpha, on_run=on_run)
        bar.close()
        atomic_write_json(out / "network.json", exp.to_dict())
        figures.append(plot_cas_curves(exp.runs, out / "cas_vs_epoch.png", args.net_classes, style))
        for run in exp.runs:
            last = run["history"][-1]
            ratio = f", w2/w1 {last['weight_ratio']:.3f}" if last["weight_ratio"] is not None else ""
            lines.append(f"  {run['recipe']:<17} eps={run['eps']:<5g} CAS {last['cas']:.2f} "
                         f"(clean-input {last['clean_cas']:.2f}), "
                         f"robust acc {last['robust_accuracy']:.3f}{ratio}")
    print(f"wrote {out}/linear_theory.json" + ("" if args.no_network else f", {out}/network.json")
          + ", " + ", ".join(str(f) for f in figures))
    print("\n".join(lines))
    return 0


def run_patch(args: argparse.Namespace) -> int:
    from ..core.progress import progress_bar
    from ..figures.synthetic import plot_patch
    from ..synthetic.patch_features import PatchConfig, run_experiment

    out = Path(args.out)
    try:
        cfg = PatchConfig(num_classes=args.classes, eps=args.eps, steps=args.steps, n_train=args.n_train,
                          n_test=args.n_test, track_every=max(1, args.steps // 6))
    except ValueError as err:
        raise RBCrossclassError(str(err)) from err
    out.mkdir(parents=True, exist_ok=True)
    n_records = 2 * (len(range(0, cfg.steps + 1, cfg.track_every)) + (cfg.steps % cfg.track_every != 0))
    bar = progress_bar(total=n_records, desc="patch model", unit="checkpoint")

    def on_record(mode, rec):
        bar.update(1)
        bar.set_postfix_str(f"{mode} step {rec.step} Γu={rec.gamma_u:.2f} Γv={rec.gamma_v:.2f}")

    exp = run_experiment(cfg, seed=args.seed, on_record=on_record).to_dict()
    bar.close()
    atomic_write_json(out / "patch.json", exp)
    figure = plot_patch(exp, out / "patch_alignment.png", figure_style(args))
    print(f"wrote {out}/patch.json and {figure} ({exp['seconds']:.0f}s)")
    for mode in ("standard", "adversarial"):
        f = exp[mode]["history"][-1]
        print(f"  {mode:<11} Γu {f['gamma_u']:.2f}  Γv {f['gamma_v']:.2f}  clean {f['clean_accuracy']:.3f}  "
              f"one-step {f['one_step_accuracy']:.3f}  PGD-10 {f['pgd_accuracy']:.3f}  "
              f"oracle flip {f['flip_accuracy']:.3f}  attack·(−v_y) cos {f['attack_cosine']:.2f}")
    print(f"  robust/non-robust alignment ratio: standard {exp['ratio_standard']:.2f}, "
          f"adversarial {exp['ratio_adversarial']:.2f}")
    return 0
