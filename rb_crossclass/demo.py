"""The embedded default job (``rb-crossclass demo`` / ``make demo``): the main job on real input,
then the cross-class theory end to end through the real pipeline, with no download, in under three
minutes on 2 CPU cores.

Stages (each writes under ``out``):

0. ``real``      — a real model on real images: the standard CIFAR-10 ResNet-18 that ships inside
   pyautoattack, on the first 100 CIFAR-10 test images shipped in this package
   (``sample:cifar10``): clean and PGD-20 attribution matrices and CAS (``real/crossclass.json``,
   ``real/attribution_matrix{,_clean}.png``) and its card (``cards/cifar10/Linf/``);
1. ``theory``    — two-weight robust optimum of the cross-class Gaussian model, closed form vs
   numerical, hard vs soft labels (``theory/linear_theory.{json,png}``);
2. ``train``     — a linear network on cross-class Gaussian data (K = 10) trained with two recipes
   (``pgd_at``, ``ema_self_distill``) at a small and a large ε, CAS scored every epoch
   (``train/network.json``, ``train/cas_vs_epoch.png``, ``train/models/*.safetensors``);
3. ``evaluate``  — AutoAttack (standard) and the cross-class scorer on the held-out points;
4. ``cards``     — validated RobustBench cards (``cards/<dataset>/Linf/*.json``);
5. ``leaderboard`` — the extended leaderboards of the synthetic models' cards, one per radius
   (``leaderboard/eps<ε>/index.html``: a board compares one ε). The real model's card holds PGD-20
   scores only (no AutoAttack evaluation, so no ``autoattack_acc``) and therefore ranks on no board.

Stages 1-5 use synthetic data; :attr:`DemoResult.inputs` says where every input came from.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .core.io import atomic_write_json
from .core.threat import PAPER_PGD_STEPS

DEMO_DATASET = "synthetic_crossclass"
DEMO_RECIPES = ("pgd_at", "ema_self_distill")
DEMO_EPS = (0.1, 0.4)
STAGES = ("real", "theory", "train", "evaluate", "cards", "leaderboard")
REAL_DATASET = "sample:cifar10"
REAL_MODEL = "py:pyautoattack.examples.resnet:ResNet18"
REAL_MODEL_ID = "Demo_pyautoattack_ResNet18"


@dataclass
class DemoConfig:
    """What the demo runs; the defaults are ``rb-crossclass demo``'s (tests use smaller ones)."""

    seed: int = 0
    real_examples: int = 100  # first N images of sample:cifar10 (at most 100)
    real_batch_size: int = 20  # small batches: the progress bar moves on a slow CPU
    real_eps: str = "8/255"
    real_steps: int = PAPER_PGD_STEPS
    theory_classes: int = 3
    net_classes: int = 10
    mu: float = 1.0
    sigma: float = 0.4
    alpha: float = 0.4
    recipes: tuple[str, ...] = DEMO_RECIPES
    eps: tuple[float, ...] = DEMO_EPS
    epochs: int = 8
    n_train: int = 3000
    n_test: int = 300
    theory_samples: int = 3000
    theory_steps: int = 250


@dataclass
class DemoResult:
    out_dir: str
    config: dict
    stages_done: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)
    models: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)  # stage -> where its data and model came from
    real: dict = field(default_factory=dict)  # the real model's scores

    def to_dict(self) -> dict:
        return asdict(self)


def run_demo(out_dir: str | Path, config: DemoConfig | None = None,
             log: Callable[[str], None] = lambda s: None, progress: bool = False) -> DemoResult:
    """Run every stage; returns what was written, where each input came from and a 6-line
    summary. ``progress`` shows progress bars on the long stages (real scoring, theory)."""
    cfg = config or DemoConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    res = DemoResult(str(out), asdict(cfg))
    card_dir = out / "cards"

    def timed(stage: str, work: Callable[[], object]):
        log(f"stage {stage} ...")
        t = time.perf_counter()
        value = work()
        res.stages_done.append(stage)
        res.seconds[stage] = time.perf_counter() - t
        log(f"stage {stage} done ({res.seconds[stage]:.0f}s)")
        return value

    res.real = timed("real", lambda: _stage_real(cfg, out / "real", card_dir, progress))
    res.outputs["real"] = str(out / "real" / "attribution_matrix.png")
    res.inputs.update(real_inputs(cfg))
    res.inputs["synthetic"] = (f"theory, training, AutoAttack: cross-class Gaussian data generated here "
                               f"(K={cfg.theory_classes} and K={cfg.net_classes}, mu={cfg.mu:g}, "
                               f"sigma={cfg.sigma:g}, seed {cfg.seed})")
    theory = timed("theory", lambda: _stage_theory(cfg, out / "theory", progress))
    res.outputs["theory"] = str(out / "theory" / "linear_theory.png")
    train = timed("train", lambda: _stage_train(cfg, out / "train", log))
    res.outputs["train"] = str(out / "train" / "cas_vs_epoch.png")
    evals = timed("evaluate", lambda: _stage_evaluate(cfg, train, log))
    res.models = timed("cards", lambda: _stage_cards(cfg, train, evals, card_dir))
    res.outputs["cards"] = str(card_dir / DEMO_DATASET / "Linf")
    from .leaderboard import build_leaderboard

    radii = sorted({m["eps"] for m in res.models})

    def boards() -> None:  # a board holds one eps: one board per radius the models were trained at
        for eps in radii:
            build_leaderboard([card_dir], DEMO_DATASET, "Linf", out / "leaderboard" / _radius_folder(eps),
                              sort_by="robust", eps=_card_eps(eps))

    timed("leaderboard", boards)
    res.outputs["leaderboard"] = ", ".join(str(out / "leaderboard" / _radius_folder(e) / "index.html")
                                           for e in radii)
    res.summary = [_real_summary(res.real)] + _summary(cfg, theory, train, res)
    atomic_write_json(out / "demo.json", res.to_dict())
    return res


def report_lines(res: DemoResult, seconds: float) -> list[str]:
    """What ``rb-crossclass demo`` prints after :func:`run_demo` took ``seconds``: stages done,
    CPU threads, the outputs, where each input came from, the summary."""
    import torch

    lines = [f"rb-crossclass demo: {len(res.stages_done)}/{len(STAGES)} stages in {seconds:.0f}s "
             f"({torch.get_num_threads()} CPU thread(s)), outputs in {res.out_dir}/"]
    lines += [f"  {stage:<20} {path}" for stage, path in res.outputs.items()]
    lines += ["inputs:", *(f"  {what:<20} {where}" for what, where in res.inputs.items())]
    lines += ["summary:", *(f"  {line}" for line in res.summary)]
    return lines


# --------------------------------------------------------------------------- stages
def pyautoattack_resnet18_checkpoint() -> Path:
    """The weights of the standard CIFAR-10 ResNet-18 shipped inside pyautoattack."""
    import pyautoattack

    return Path(pyautoattack.__file__).parent / "examples" / "model_test.pt"


def real_inputs(cfg: DemoConfig) -> dict[str, str]:
    """Where the real stage's images and model come from."""
    from .data.samples import sample_path

    return {"real images": f"the first {cfg.real_examples} CIFAR-10 test images ({REAL_DATASET}: "
                           f"{sample_path('cifar10')})",
            "real model": f"pyautoattack's standard CIFAR-10 ResNet-18 ({REAL_MODEL}, "
                          f"{pyautoattack_resnet18_checkpoint()})"}


def _stage_real(cfg: DemoConfig, out: Path, card_dir: Path, progress: bool) -> dict:
    """Score the real model on real images (clean and PGD), write JSON, heatmaps and its card."""
    from .attacks import PGDConfig
    from .cards import CardDescription, card_from_results, cross_class_block, write_card
    from .core.threat import parse_eps
    from .crossclass import ComputeSettings, crossclass_record, score_model
    from .data import open_split
    from .figures import plot_attribution_matrix
    from .models import create_model_source

    split = open_split(REAL_DATASET, "test", cfg.real_examples)
    model = create_model_source(REAL_MODEL, checkpoint=str(pyautoattack_resnet18_checkpoint()))
    attack = PGDConfig(eps=parse_eps(cfg.real_eps), steps=cfg.real_steps)
    names = list(split.info.class_names)
    result = score_model(model, split.x, split.y, attack=attack,
                         compute=ComputeSettings(batch_size=cfg.real_batch_size, channels_last=True),
                         seed=cfg.seed, class_names=names, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    record = crossclass_record(result, source=REAL_MODEL, checkpoint=str(pyautoattack_resnet18_checkpoint()),
                               model_meta=model.meta, dataset=REAL_DATASET, threat_model="Linf",
                               eps=attack.eps, seed=cfg.seed)  # the same record as `rb-crossclass score`
    atomic_write_json(out / "crossclass.json", record)
    what = f"PGD-{cfg.real_steps} Linf eps={cfg.real_eps}"
    plot_attribution_matrix(result.matrix, names, out / "attribution_matrix.png",
                            title=f"ResNet-18 (pyautoattack), {what}, CAS {result.cas:.2f}")
    plot_attribution_matrix(result.clean_matrix, names, out / "attribution_matrix_clean.png",
                            title=f"ResNet-18 (pyautoattack), clean, CAS {result.clean_cas:.2f}")
    card = card_from_results(
        name="ResNet-18, standard training (pyautoattack's example model)", dataset="cifar10",
        threat_model="Linf", eps=cfg.real_eps, clean_accuracy=result.clean_accuracy,
        robust_accuracy=None, description=CardDescription(
            architecture="ResNet-18", link="https://pypi.org/project/pyautoattack/",
            venue="rb-crossclass demo",
            footnote=(f"Demo: cross-class scores of PGD-{cfg.real_steps} on the first {result.n_examples} "
                      "CIFAR-10 test images; no AutoAttack evaluation, so no autoattack_acc and no "
                      "leaderboard rank (rb-crossclass evaluate adds both).")),
        cross_class=cross_class_block(result, {"name": "pgd", **result.attack}))
    write_card(card, card_dir / "cifar10" / "Linf" / f"{REAL_MODEL_ID}.json")
    return {"model_id": REAL_MODEL_ID, "n_examples": result.n_examples, "cas": result.cas,
            "clean_cas": result.clean_cas, "normalized_cas": result.normalized_cas, "fsi": result.fsi,
            "clean_accuracy": result.clean_accuracy, "robust_accuracy": result.robust_accuracy,
            "attack": what, "seconds": result.seconds,
            "card": str(card_dir / "cifar10" / "Linf" / f"{REAL_MODEL_ID}.json")}


def _stage_theory(cfg: DemoConfig, out: Path, progress: bool = False) -> dict:
    from .figures.synthetic import plot_linear_theory
    from .synthetic.crossclass_gaussian import CrossClassGaussian, eps_grid, sweep

    model = CrossClassGaussian(cfg.theory_classes, cfg.mu, cfg.sigma)
    theory = sweep(model, eps_grid(model), alpha=cfg.alpha, seed=cfg.seed, n_samples=cfg.theory_samples,
                   steps=cfg.theory_steps, progress=progress).to_dict()
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "linear_theory.json", theory)
    plot_linear_theory(theory, out / "linear_theory.png")
    return theory


def _stage_train(cfg: DemoConfig, out: Path, log: Callable[[str], None]) -> dict:
    from .figures.synthetic import plot_cas_curves
    from .models import save_safetensors
    from .synthetic.crossclass_gaussian import CrossClassGaussian
    from .synthetic.crossclass_network import run_network_experiment

    model = CrossClassGaussian(cfg.net_classes, cfg.mu, cfg.sigma)
    exp, extra = run_network_experiment(
        model, list(cfg.recipes), list(cfg.eps), n_train=cfg.n_train, n_test=cfg.n_test, epochs=cfg.epochs,
        seed=cfg.seed, alpha=cfg.alpha, keep_models=True,
        on_run=lambda r: log(f"trained {r.recipe} eps={r.eps:g}: CAS {r.history[-1].cas:.2f}, "
                             f"robust acc {r.history[-1].robust_accuracy:.3f} ({r.seconds:.0f}s)"))
    experiment = exp.to_dict()
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "network.json", experiment)
    plot_cas_curves(exp.runs, out / "cas_vs_epoch.png", cfg.net_classes)
    checkpoints = {}
    for (recipe, eps), net in extra["models"].items():
        path = out / "models" / f"{_model_id(recipe, eps)}.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        checkpoints[(recipe, eps)] = save_safetensors(net, path)
    return {"experiment": experiment, "models": extra["models"], "test": extra["test"],
            "checkpoints": checkpoints}


def _stage_evaluate(cfg: DemoConfig, train: dict, log: Callable[[str], None]) -> dict:
    from .evaluate import AutoAttackConfig, evaluate_model
    from .synthetic.crossclass_network import DEFAULT_SCALE, to_images

    x_test, y_test = train["test"]
    x_img = to_images(x_test, DEFAULT_SCALE)
    evals = {}
    for (recipe, eps), net in train["models"].items():
        res = evaluate_model(net.eval(), x_img, y_test,
                             AutoAttackConfig(norm="Linf", eps=eps * DEFAULT_SCALE, version="standard",
                                        batch_size=len(y_test), seed=cfg.seed),
                             cas=True, pgd=True, model_name=_model_id(recipe, eps), dataset=DEMO_DATASET,
                             progress=False)
        evals[(recipe, eps)] = res
        log(f"AutoAttack {recipe} eps={eps:g}: clean {res.clean_accuracy:.3f}, "
            f"robust {res.robust_accuracy:.3f}")
    return evals


def _stage_cards(cfg: DemoConfig, train: dict, evals: dict, card_dir: Path) -> list[dict]:
    from .cards import write_card
    from .evaluate import result_card
    from .synthetic.crossclass_network import DEFAULT_SCALE

    runs = {(r["recipe"], r["eps"]): r for r in train["experiment"]["runs"]}
    rows = []
    for key, res in evals.items():
        recipe, eps = key
        run = runs[key]
        name = _model_id(recipe, eps)
        training = {"recipe": recipe,
                    "config": {"recipe_params": run["recipe_params"], "eps_theory": eps, "demo": asdict(cfg)},
                    "epochs": run["epochs"], "best_epoch": None,
                    "checkpoint_sha256": train["checkpoints"][key]}
        card = result_card(
            res, name=f"Demo: linear net, {recipe}, eps {eps:g} (cross-class Gaussian, K={cfg.net_classes})",
            dataset=DEMO_DATASET, architecture=f"linear {2 * cfg.net_classes}→{cfg.net_classes}",
            training=training, venue="rb-crossclass demo",
            footnote=f"Synthetic data: eps is {DEMO_DATASET} image units "
                     f"(theory eps {eps:g} × {DEFAULT_SCALE:g}).")
        path = card_dir / DEMO_DATASET / "Linf" / f"{name}.json"
        write_card(card, path)
        cc = res.cross_class_pgd or res.cross_class
        rows.append({"model_id": name, "recipe": recipe, "eps": eps, "card": str(path),
                     "clean_accuracy": res.clean_accuracy, "autoattack_accuracy": res.robust_accuracy,
                     "cas_pgd": cc["cas"] if cc else None,
                     "clean_cas": cc.get("clean_cas") if cc else None})
    return rows


def _radius_folder(eps: float) -> str:
    """The board folder of the models trained at theory radius ``eps`` (``eps0p1``)."""
    return f"eps{eps:g}".replace(".", "p")


def _card_eps(eps: float) -> float:
    """The radius the cards of theory radius ``eps`` record (image units)."""
    from .synthetic.crossclass_network import DEFAULT_SCALE

    return eps * DEFAULT_SCALE


def _model_id(recipe: str, eps: float) -> str:
    return f"Demo_Linear_{recipe}_{_radius_folder(eps)}"


# --------------------------------------------------------------------------- summary
def _real_summary(real: dict) -> str:
    k = 10
    return (f"0. Real (pyautoattack's standard ResNet-18, first {real['n_examples']} CIFAR-10 test images): "
            f"clean accuracy {100 * real['clean_accuracy']:.1f}%, {real['attack']} accuracy "
            f"{100 * real['robust_accuracy']:.1f}%; CAS {real['cas']:.2f} on adversarial examples vs "
            f"{real['clean_cas']:.2f} on clean inputs (max {k * (k - 1)}).")


def _summary(cfg: DemoConfig, theory: dict | None, train: dict | None, res: DemoResult) -> list[str]:
    lines = []
    if theory is not None:
        lines.append(f"1. Theory (synthetic, K={cfg.theory_classes}): the robust optimum drops the "
                     f"cross-class weight w2 above eps0={theory['eps0']:.3f} (< mu/2={cfg.mu / 2:g}) "
                     f"while w1 > 0; closed form vs numerical max |diff| {theory['max_abs_error']:.3f}.")
        acc_eps, acc = theory["accuracy_eps"][-1], theory["accuracy"][-1]
        lines.append(f"2. Soft labels (alpha={cfg.alpha:g}) move the threshold to "
                     f"eps1={theory['eps_alpha']:.3f} "
                     f"({'>' if theory['eps_alpha'] > theory['eps0'] else '<='} eps0); robust accuracy at "
                     f"eps={acc_eps:g}: {100 * acc[0]:.1f}% with w2=0, {100 * acc[-1]:.1f}% with w2=w1.")
    else:
        lines += ["1. Theory stage missing.", "2. Theory stage missing."]
    if train is not None:
        lines += _train_summary(cfg, train["experiment"]["runs"])
    else:
        lines += ["3. Train stage missing.", "4. Train stage missing."]
    if res.models:
        bests = []
        for eps in sorted({m["eps"] for m in res.models}):
            at_eps = [m for m in res.models if m["eps"] == eps]
            best = max(at_eps, key=lambda m: m["autoattack_accuracy"])
            bests.append(f"at eps {eps:g} {100 * best['autoattack_accuracy']:.1f}% ({best['model_id']})")
        lines.append(f"5. {len(res.models)} synthetic-model cards + one leaderboard per eps (a board "
                     f"compares one radius): best AutoAttack accuracy {'; '.join(bests)}; the real model's "
                     "card holds PGD-20 scores only (no AutoAttack), so it ranks on no board.")
    else:
        lines.append("5. No cards were written.")
    return lines


def _train_summary(cfg: DemoConfig, runs: list[dict]) -> list[str]:
    """Lines 3 and 4: every conclusion from CAS on PGD examples (the paper's protocol: the
    attribution of adversarial examples), with what clean-input CAS shows beside it, named as such."""

    def last(recipe: str, eps: float, key: str) -> float:
        for r in runs:
            if r["recipe"] == recipe and r["eps"] == eps:
                return r["history"][-1][key]
        return float("nan")

    lo, hi = min(cfg.eps), max(cfg.eps)
    base, soft = cfg.recipes[0], cfg.recipes[-1]
    a_lo, a_hi = last(base, lo, "cas"), last(base, hi, "cas")
    c_lo, c_hi = last(base, lo, "clean_cas"), last(base, hi, "clean_cas")
    adv_fewer, clean_fewer = a_hi < a_lo, c_hi < c_lo
    line3 = (f"3. {base} on synthetic data, CAS of PGD examples (the paper's protocol): {a_lo:.2f} at "
             f"eps {lo:g} vs {a_hi:.2f} at eps {hi:g} ({'fewer' if adv_fewer else 'not fewer'} cross-class "
             f"features at large eps); clean-input CAS {c_lo:.2f} vs {c_hi:.2f} "
             f"({'the same order' if adv_fewer == clean_fewer else 'the opposite order'}); "
             f"w2/w1 {last(base, lo, 'weight_ratio'):.3f} vs {last(base, hi, 'weight_ratio'):.3f}.")
    adv, clean = [], []
    for eps in sorted(cfg.eps):
        s_adv, b_adv = last(soft, eps, "cas"), last(base, eps, "cas")
        s_cl, b_cl = last(soft, eps, "clean_cas"), last(base, eps, "clean_cas")
        adv.append((eps, s_adv > b_adv, f"eps {eps:g}: {s_adv:.2f} vs {b_adv:.2f}"))
        clean.append((eps, s_cl > b_cl, f"eps {eps:g}: {s_cl:.2f} vs {b_cl:.2f}"))
    keeps = [eps for eps, more, _ in adv if more]
    verdict = ("soft labels keep more cross-class features at every eps" if len(keeps) == len(adv) else
               "soft labels keep more cross-class features at no eps" if not keeps else
               "soft labels keep more cross-class features only at eps " + ", ".join(f"{e:g}" for e in keeps))
    disagree = [f"{eps:g}" for (eps, a, _), (_, c, _) in zip(adv, clean, strict=True) if a != c]
    other = ("clean-input CAS gives the same order" if not disagree else
             "clean-input CAS gives the opposite order at eps " + ", ".join(disagree))
    line4 = (f"4. {soft} vs {base}, CAS of PGD examples (the paper's protocol): "
             + "; ".join(t for _, _, t in adv) + f": {verdict}. Clean-input CAS: "
             + "; ".join(t for _, _, t in clean) + f" ({other}).")
    return [line3, line4]
