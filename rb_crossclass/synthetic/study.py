"""The theory's two studies as one call each, what ``rb-crossclass synthetic`` runs: inputs checked,
results written as JSON with their figures, and the summary lines returned for printing.

- :func:`run_crossclass_study`: the cross-class Gaussian model's two-weight theory (closed form
  and numerical optimum, ``w1``/``w2`` against ε with and without soft labels) and, unless
  ``network=False``, small networks trained with our recipes and scored per epoch with CAS;
- :func:`run_patch_study`: the robust-sparse / non-robust-dense patch model, standard vs
  adversarial training.

Importing this module imports no torch (the defaults below serve the command line's ``--help``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import RBCrossclassError

DEFAULT_NET_EPS: tuple[float, ...] = (0.1, 0.25, 0.4)  # theory units, ℓ∞
DEFAULT_RECIPES: tuple[str, ...] = ("pgd_at", "trades", "label_smoothing", "ema_self_distill")


class SyntheticError(RBCrossclassError, ValueError):
    """A synthetic study's input is out of range; the message names it."""


@dataclass
class StudyReport:
    """What a study wrote (``files``: JSON results, then figures) and its summary ``lines``
    (human-readable, for printing; the first names the files); ``data`` holds the written records
    by file stem."""

    out: Path
    files: list[Path] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


def check_crossclass_inputs(*, classes: int, net_classes: int, mu: float, sigma: float, alpha: float,
                            recipes: Sequence[str]) -> None:
    """Refuse what the cross-class study cannot run, before any work: unknown recipes, ``kd``
    (it needs a teacher model), ``classes``/``net_classes`` < 3 or bad ``mu``/``sigma`` (the
    model's own checks), ``alpha`` outside [0, 1). Raises :class:`SyntheticError`."""
    from ..recipes import available_recipes
    from .crossclass_gaussian import CrossClassGaussian

    unknown = [r for r in recipes if r not in available_recipes()]
    if unknown:
        raise SyntheticError(f"unknown recipe(s) {unknown}; known: {available_recipes()}")
    if "kd" in recipes:
        raise SyntheticError("recipe 'kd' needs a teacher model; use ema_self_distill here")
    try:
        CrossClassGaussian(classes, mu, sigma)
        CrossClassGaussian(net_classes, mu, sigma)
    except ValueError as err:
        raise SyntheticError(str(err)) from err
    if not 0 <= alpha < 1:
        raise SyntheticError(f"--alpha must be in [0,1), got {alpha}")


def run_crossclass_study(out: str | os.PathLike, *, classes: int = 3, net_classes: int = 10, mu: float = 1.0,
                         sigma: float = 0.4, alpha: float = 0.4, lam: float = 1.0,
                         recipes: Sequence[str] = DEFAULT_RECIPES, eps: Sequence[float] = DEFAULT_NET_EPS,
                         epochs: int = 10, hidden: int = 0, n_train: int = 4000, n_test: int = 1000,
                         seed: int = 0, network: bool = True, style: Any = None) -> StudyReport:
    """The cross-class Gaussian study (Wei, Guo & Wang) into folder ``out``.

    Writes ``linear_theory.json`` + ``linear_theory.png`` (K = ``classes``, ε over 0..μ/2, soft
    margin loss with ``alpha``, L2 penalty ``lam``) and, with ``network``, ``network.json`` +
    ``cas_vs_epoch.png``: per (recipe, ε in ``eps``, theory units) a network of width ``hidden``
    (0: linear) trained ``epochs`` epochs on ``n_train`` points of K = ``net_classes`` classes and
    scored on ``n_test``. ``style``: a :class:`~rb_crossclass.figures.FigureStyle` (``None``:
    default). Progress goes to stderr. Raises :class:`SyntheticError` for bad inputs
    (:func:`check_crossclass_inputs`), before anything is written.
    """
    from ..core.io import atomic_write_json
    from ..core.progress import progress_bar
    from ..figures.synthetic import plot_cas_curves, plot_linear_theory
    from .crossclass_gaussian import CrossClassGaussian, eps_grid, sweep
    from .crossclass_network import run_network_experiment

    check_crossclass_inputs(classes=classes, net_classes=net_classes, mu=mu, sigma=sigma, alpha=alpha,
                            recipes=recipes)
    out = Path(out)
    theory_model = CrossClassGaussian(classes, mu, sigma)
    out.mkdir(parents=True, exist_ok=True)
    report = StudyReport(out)
    theory = sweep(theory_model, eps_grid(theory_model), alpha=alpha, lam=lam, seed=seed,
                   progress=True).to_dict()
    atomic_write_json(out / "linear_theory.json", theory)
    report.data["linear_theory"] = theory
    report.files.append(out / "linear_theory.json")
    figures = [plot_linear_theory(theory, out / "linear_theory.png", style)]
    report.lines.append(
        f"two-weight theory (K={classes}, mu={mu:g}, sigma={sigma:g}): w2 = 0 above "
        f"eps0 = {theory['eps0']:.3f} (< mu/2 = {mu / 2:g}); soft labels (alpha={alpha:g}) "
        f"move it to eps1 = {theory['eps_alpha']:.3f}; closed form vs numerical max |diff| = "
        f"{theory['max_abs_error']:.4f}")
    if network:
        bar = progress_bar(total=len(eps) * len(recipes), desc="train+score", unit="run")

        def on_run(run) -> None:
            bar.update(1)
            bar.set_postfix_str(f"{run.recipe} eps={run.eps:g} CAS={run.history[-1].cas:.2f}")

        try:
            exp, _ = run_network_experiment(CrossClassGaussian(net_classes, mu, sigma), list(recipes),
                                            list(eps), n_train=n_train, n_test=n_test, hidden=hidden,
                                            epochs=epochs, seed=seed, alpha=alpha, on_run=on_run)
        finally:
            bar.close()
        record = exp.to_dict()
        atomic_write_json(out / "network.json", record)
        report.data["network"] = record
        report.files.append(out / "network.json")
        figures.append(plot_cas_curves(exp.runs, out / "cas_vs_epoch.png", net_classes, style))
        for run in exp.runs:
            last = run["history"][-1]
            ratio = f", w2/w1 {last['weight_ratio']:.3f}" if last["weight_ratio"] is not None else ""
            report.lines.append(f"  {run['recipe']:<17} eps={run['eps']:<5g} CAS {last['cas']:.2f} "
                                f"(clean-input {last['clean_cas']:.2f}), "
                                f"robust acc {last['robust_accuracy']:.3f}{ratio}")
    report.files.extend(Path(f) for f in figures)
    report.lines.insert(0, "wrote " + ", ".join(str(f) for f in report.files))
    return report


def run_patch_study(out: str | os.PathLike, *, classes: int = 4, eps: float = 0.75, steps: int = 600,
                    n_train: int = 500, n_test: int = 2000, seed: int = 0, style: Any = None) -> StudyReport:
    """The patch model (Li & Li): standard and adversarial training of the two-layer smoothed-ReLU
    CNN on ``classes`` classes (per-patch ℓ2 radius ``eps`` in span(v), ``steps`` gradient steps,
    alignments recorded six times). Writes ``patch.json`` and ``patch_alignment.png`` into
    ``out``. Raises :class:`SyntheticError` for parameters the model refuses (before writing)."""
    from ..core.io import atomic_write_json
    from ..core.progress import progress_bar
    from ..figures.synthetic import plot_patch
    from .patch_features import PatchConfig, run_experiment

    out = Path(out)
    try:
        cfg = PatchConfig(num_classes=classes, eps=eps, steps=steps, n_train=n_train, n_test=n_test,
                          track_every=max(1, steps // 6))
    except ValueError as err:
        raise SyntheticError(str(err)) from err
    out.mkdir(parents=True, exist_ok=True)
    n_records = 2 * (len(range(0, cfg.steps + 1, cfg.track_every)) + (cfg.steps % cfg.track_every != 0))
    bar = progress_bar(total=n_records, desc="patch model", unit="checkpoint")

    def on_record(mode, rec) -> None:
        bar.update(1)
        bar.set_postfix_str(f"{mode} step {rec.step} Γu={rec.gamma_u:.2f} Γv={rec.gamma_v:.2f}")

    try:
        exp = run_experiment(cfg, seed=seed, on_record=on_record).to_dict()
    finally:
        bar.close()
    atomic_write_json(out / "patch.json", exp)
    figure = plot_patch(exp, out / "patch_alignment.png", style)
    report = StudyReport(out, files=[out / "patch.json", Path(figure)], data={"patch": exp})
    report.lines.append(f"wrote {out}/patch.json and {figure} ({exp['seconds']:.0f}s)")
    for mode in ("standard", "adversarial"):
        f = exp[mode]["history"][-1]
        report.lines.append(
            f"  {mode:<11} Γu {f['gamma_u']:.2f}  Γv {f['gamma_v']:.2f}  clean {f['clean_accuracy']:.3f}  "
            f"one-step {f['one_step_accuracy']:.3f}  PGD-10 {f['pgd_accuracy']:.3f}  "
            f"oracle flip {f['flip_accuracy']:.3f}  attack·(−v_y) cos {f['attack_cosine']:.2f}")
    report.lines.append(f"  robust/non-robust alignment ratio: standard {exp['ratio_standard']:.2f}, "
                        f"adversarial {exp['ratio_adversarial']:.2f}")
    return report
