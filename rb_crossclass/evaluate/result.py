"""One evaluation end to end: AutoAttack, the cross-class scores of its examples (CAS on
AutoAttack's own output, where points no attack broke stay clean, as AutoAttack returns them),
optionally the paper's PGD-20 protocol, the result record, its card and a text summary."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from ..attacks import PGDConfig
from ..cards import CardDescription, card_from_results, protocol_block
from ..cards.flags import pack_flags
from ..core.formatting import MISSING, format_number
from ..core.provenance import now_iso, package_versions
from ..core.runtime import Ranks, resolve_device
from ..core.threat import PAPER_PGD_STEPS, format_eps
from ..crossclass import accuracy_interval, per_class_from_flags, score_examples, score_model
from ..crossclass.compute import ComputeSettings, compute_from_legacy
from ..crossclass.per_class import worst_class_words
from ..crossclass.uncertainty import shown_cas_interval
from .autoattack import run_autoattack
from .protocol import AutoAttackConfig, EvaluateError
from .state import EvalState, model_digest, tensor_digest


@dataclass
class EvalResult:
    """One evaluation: accuracies (fractions), per-point flags, cross-class scores, costs."""

    model: str
    dataset: str
    n_examples: int
    threat_model: str
    eps: float
    eps_string: str
    version: str
    attacks: list[str]
    seed: int
    batch_size: int
    clean_correct: int
    robust_correct: int
    clean_accuracy: float
    robust_accuracy: float
    robust_after_attack: dict[str, int]
    clean_flags: str  # "0"/"1" per point, in data order
    robust_flags: str
    seconds: float
    seconds_by_stage: dict[str, float]
    passes: dict[str, int]
    batches_run: int
    batches_loaded: int
    device: str
    world_size: int
    date: str
    package_versions: dict[str, str]
    cross_class: dict | None = None  # ScoreResult.to_dict() on AutoAttack's examples
    cross_class_pgd: dict | None = None  # the paper's PGD-20 protocol (the card's cross_class block)
    per_class: dict | None = None  # clean and AutoAttack accuracy per class (crossclass.per_class_block)
    model_info: dict = field(default_factory=dict)
    randomized: bool = False  # two forwards of one input differ
    diagnostics: list[str] = field(default_factory=list)  # pyautoattack's warnings
    adjustments: dict[str, str] = field(default_factory=dict)  # attack settings fitted to K
    threads: int | None = None  # torch CPU threads of the process (None on an accelerator)
    score_dtype: str = "float32"  # the scoring passes' precision (AutoAttack always runs in float32)
    attack_model: dict = field(default_factory=dict)  # the speed-ups AutoAttack's model had (attack_model.py)

    def to_dict(self) -> dict:
        return asdict(self)

    def cost(self) -> dict:
        """The card's ``evaluation.cost`` block (see :func:`_cost_of`)."""
        return _cost_of(self)

    def robust_flag_tensor(self) -> torch.Tensor:
        return torch.tensor([c == "1" for c in self.robust_flags], dtype=torch.bool)

    def evaluation_block(self) -> dict:
        """The card's ``evaluation`` block."""
        return {
            "n_examples": self.n_examples, "dataset": self.dataset, "threat_model": self.threat_model,
            "eps": self.eps, "autoattack_version": self.version, "attacks": list(self.attacks),
            "seed": self.seed, "batch_size": self.batch_size, "date": self.date,
            "package_versions": dict(self.package_versions), "seconds": round(self.seconds, 3),
            "clean_correct": self.clean_correct, "robust_correct": self.robust_correct,
            "robust_after_attack": dict(self.robust_after_attack),
            **self.passes,
            "device": self.device, "world_size": self.world_size,
            "randomized": self.randomized, "diagnostics": list(self.diagnostics),
            "adjustments": dict(self.adjustments),
            "cost": self.cost(),
            **({"per_class": self.per_class} if self.per_class is not None else {}),
            "point_flags": {"clean": pack_flags(self.clean_flags), "robust": pack_flags(self.robust_flags)},
            "intervals": {
                "clean_accuracy": list(accuracy_interval(self.clean_correct, self.n_examples)),
                "autoattack_accuracy": list(accuracy_interval(self.robust_correct, self.n_examples)),
            },
        }


def _cost_of(result: EvalResult) -> dict:
    """What the evaluation cost: AutoAttack's and the scoring passes' wall seconds (this process;
    a resumed run counts only what it ran), the passes through the model (calls and samples), and
    where it ran: device, CPU threads, dtype."""
    stages = result.seconds_by_stage
    scoring = sum(stages.get(k, 0.0) for k in ("cas", "cas_pgd"))
    return {
        "autoattack_seconds": round(sum(v for k, v in stages.items() if k not in ("cas", "cas_pgd")), 3),
        "scoring_seconds": round(scoring, 3),
        "forward_samples": int(result.passes.get("forward_samples", 0)),
        "backward_samples": int(result.passes.get("backward_samples", 0)),
        "device": result.device, "threads": result.threads, "world_size": result.world_size,
        "autoattack_dtype": "float32", "scoring_dtype": result.score_dtype,
        **({"autoattack_model": dict(result.attack_model)} if result.attack_model else {}),
    }


def _flags(t: torch.Tensor) -> str:
    return "".join("1" if v else "0" for v in t.tolist())


def evaluate_model(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: AutoAttackConfig,
    *,
    compute: ComputeSettings | None = None,
    state_dir: str | os.PathLike | None = None,
    class_names: Sequence[str] | None = None,
    cas: bool = True,
    pgd: bool = True,
    model_name: str = "model",
    dataset: str = "",
    progress: bool = True,
    ranks: Ranks | None = None,
    aa_exact: bool = False,
    **legacy: Any,
) -> EvalResult:
    """Clean + AutoAttack accuracy of ``model`` on ``x: [N,C,H,W]`` in [0,1], ``y: [N]``, per class
    and with 95 % intervals, and (``cas``) the cross-class scores of the paper's PGD-20 protocol
    (``pgd``, on by default) and of AutoAttack's own adversarial examples. The model must be in
    eval mode and take [0,1] inputs.

    Under ``torch.distributed`` the attack batches are split over ranks and every rank returns the
    same result; ``state_dir`` makes the run resumable (see :class:`EvalState`). ``aa_exact``
    hands pyautoattack the model as it is (bare pyautoattack's arithmetic) instead of its faster
    form (:func:`~rb_crossclass.evaluate.attack_model.attack_model`).

    ``compute`` (:class:`~rb_crossclass.crossclass.compute.ComputeSettings`): ``device``;
    ``batch_size`` of the scoring passes (``None`` = AutoAttack's, ``config.batch_size``); ``bf16``
    for the scoring passes only (AutoAttack stays float32, RobustBench's protocol);
    ``channels_last=True`` puts the model in channels_last before AutoAttack (the scoring passes
    keep their own default, :func:`~rb_crossclass.core.runtime.prefers_channels_last`); ``threads``
    as in ``ComputeSettings``. The old keywords ``device``, ``score_batch_size`` and ``score_bf16``
    still work with a :class:`DeprecationWarning`. Raises :class:`EvaluateError` for empty or
    mismatched ``x``/``y`` or inputs outside [0,1].
    """
    compute = compute_from_legacy(compute, legacy, "evaluate_model",
                                  ("device", "score_batch_size", "score_bf16"))
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise EvaluateError(f"x has {x.shape[0]} points and y {y.shape[0]}: need the same, non-zero")
    if float(x.min()) < 0 or float(x.max()) > 1:
        raise EvaluateError("inputs must lie in [0,1] (normalization belongs inside the model)")
    ranks = ranks or Ranks.current()
    compute.apply_threads()
    auto = compute.device is None or compute.device == "auto"
    device = resolve_device(None) if auto else torch.device(compute.device)
    x, y = x.contiguous(), y.contiguous()
    model = model.eval()
    if compute.channels_last:
        model = model.to(memory_format=torch.channels_last)
    t_start = time.perf_counter()
    state = None
    if state_dir is not None:
        fingerprint = {"config": config.as_dict(), "n_examples": int(x.shape[0]),
                       "data": tensor_digest(x, y), "model": model_digest(model), "dataset": dataset,
                       "aa_exact": bool(aa_exact)}
        state = EvalState(state_dir, fingerprint, ranks)
    outcome = run_autoattack(model, x, y, config, device=device, state=state, ranks=ranks,
                             progress=progress, exact=aa_exact)
    n = int(x.shape[0])
    stages = dict(outcome.seconds)
    cross = cross_pgd = None
    if cas:
        cross, cross_pgd = _cross_class_scores(
            model, x, y, outcome, config, stages, pgd=pgd,
            compute=ComputeSettings(device=device, batch_size=compute.batch_size or config.batch_size,
                                    bf16=compute.bf16),
            class_names=class_names, progress=progress, ranks=ranks)
    clean_correct = int(outcome.clean_flags.sum())
    robust_correct = int(outcome.robust_flags.sum())
    meta = getattr(model, "meta", {}) or {}
    k = getattr(model, "num_classes", None)
    names = list(class_names) if class_names is not None else ([str(i) for i in range(k)] if k else None)
    return EvalResult(
        model=model_name, dataset=dataset, n_examples=n, threat_model=config.norm, eps=config.eps,
        eps_string=format_eps(config.eps), version=config.version, attacks=outcome.attacks,
        seed=config.seed, batch_size=config.batch_size, clean_correct=clean_correct,
        robust_correct=robust_correct, clean_accuracy=clean_correct / n,
        robust_accuracy=robust_correct / n, robust_after_attack=outcome.robust_after,
        clean_flags=_flags(outcome.clean_flags), robust_flags=_flags(outcome.robust_flags),
        seconds=time.perf_counter() - t_start, seconds_by_stage=stages, passes=outcome.passes,
        batches_run=outcome.batches_run, batches_loaded=outcome.batches_loaded, device=str(device),
        world_size=ranks.world_size, date=now_iso(), package_versions=package_versions(),
        cross_class=cross, cross_class_pgd=cross_pgd,
        per_class=(per_class_from_flags(y, outcome.clean_flags, outcome.robust_flags, names)
                   if names else None),
        model_info={k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool))},
        randomized=bool(meta.get("randomized", False)), diagnostics=outcome.diagnostics,
        adjustments=outcome.adjustments,
        threads=torch.get_num_threads() if device.type == "cpu" else None,
        score_dtype="bfloat16" if compute.bf16 else "float32", attack_model=outcome.attack_model,
    )


def _cross_class_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, outcome, config: AutoAttackConfig,
                        stages: dict[str, float], *, pgd: bool, compute: ComputeSettings,
                        class_names: Sequence[str] | None, progress: bool,
                        ranks: Ranks) -> tuple[dict, dict | None]:
    """CAS on AutoAttack's examples and (``pgd``) on the paper's PGD-20 protocol, with intervals."""
    t0 = time.perf_counter()
    info = {"name": "autoattack", "version": config.version, "attacks": outcome.attacks,
            "norm": config.norm, "eps": config.eps, "seed": config.seed}
    cross = score_examples(model, x, outcome.x_adv, y, compute=compute,
                           class_names=class_names, progress=progress, ranks=ranks, attack=info,
                           intervals=True, seed=config.seed).to_dict()
    stages["cas"] = time.perf_counter() - t0
    if not pgd:
        return cross, None
    t0 = time.perf_counter()
    attack = PGDConfig(eps=config.eps, steps=PAPER_PGD_STEPS, norm=config.norm)
    cross_pgd = score_model(model, x, y, attack=attack,
                            compute=compute, seed=config.seed, class_names=class_names,
                            progress=progress, ranks=ranks, intervals=True).to_dict()
    stages["cas_pgd"] = time.perf_counter() - t0
    return cross, cross_pgd


def result_card(
    result: EvalResult,
    *,
    name: str,
    dataset: str | None = None,
    architecture: str | None = None,
    base: dict | None = None,
    training: dict | None = None,
    **descriptive: Any,
) -> dict:
    """A validated RobustBench card of ``result`` (``dataset``: the card's dataset name, default the
    evaluated one; ``base``: an official card to pre-fill from; ``descriptive``: ``link``,
    ``authors``, ``venue``, ``additional_data``, ``footnote`` ...: the fields of
    :class:`~rb_crossclass.cards.CardDescription`; raises :class:`TypeError` for any other)."""
    cross = None
    if result.cross_class_pgd is not None:  # the paper's protocol on top, AutoAttack's examples beside it
        cross = protocol_block(result.cross_class_pgd, result.cross_class)
    return card_from_results(
        name=name, dataset=dataset or result.dataset, threat_model=result.threat_model, eps=result.eps,
        clean_accuracy=result.clean_accuracy, robust_accuracy=result.robust_accuracy,
        description=CardDescription(architecture=architecture or result.model_info.get("architecture", ""),
                                    **descriptive),
        cross_class=cross, evaluation=result.evaluation_block(), training=training, base=base,
        unreliable=bool(result.diagnostics),
    )


def summary_table(result: EvalResult) -> str:
    """Plain-text summary: accuracy after each stage, time per stage, CAS."""
    n = result.n_examples
    lines = [f"{'stage':<10} {'robust':>8} {'accuracy':>9} {'seconds':>9}",
             "-" * 39]
    for stage, count in result.robust_after_attack.items():
        secs = result.seconds_by_stage.get(stage, 0.0)
        lines.append(f"{stage:<10} {count:>8d} {100 * count / n:>8.2f}% {secs:>9.1f}")
    skipped = [a for a in result.attacks if a not in result.robust_after_attack]
    if skipped:
        lines.append(f"(no robust points left: {', '.join(skipped)} not needed)")
    lines.append("-" * 39)
    block = result.evaluation_block()["intervals"]
    lines.append(f"clean accuracy      {100 * result.clean_accuracy:6.2f}%  ({result.clean_correct}/{n}, "
                 f"95% CI {_pct(block['clean_accuracy'])})")
    lines.append(f"AutoAttack accuracy {100 * result.robust_accuracy:6.2f}%  ({result.robust_correct}/{n}, "
                 f"95% CI {_pct(block['autoattack_accuracy'])}; {result.version}, {result.threat_model} "
                 f"eps {result.eps_string})")
    if result.per_class and result.per_class["worst_class"] is not None:
        pc = result.per_class
        lines.append(f"worst class         {100 * pc['worst_class_robust_accuracy']:6.2f}%  AutoAttack "
                     f"accuracy of {worst_class_words(pc)} "
                     f"(spread best - worst {100 * pc['spread']:.2f} points)")
    for label, cc in (("CAS (paper's PGD-20 protocol)", result.cross_class_pgd),
                      ("CAS on AutoAttack's examples", result.cross_class)):
        if cc is not None:
            k = len(cc["class_names"]) - len(cc.get("empty_classes") or [])  # classes with samples
            ci = shown_cas_interval(cc)
            lines.append(f"{label}: {_num(cc['cas'])} of {k * (k - 1)}"
                         + (f" (95% CI {ci})" if isinstance(ci, str) else
                            f" (95% CI {_num(ci[0])}-{_num(ci[1])})" if ci else "")
                         + f", normalized {_num(cc['normalized_cas'])}, FSI {_num(cc['fsi'])}; "
                         f"clean-input CAS {_num(cc['clean_cas'])}")
    for key, change in result.adjustments.items():
        lines.append(f"adjusted to the model's classes: {key} {change}")
    if result.randomized:
        lines.append("the model is randomized: two forwards of one input differ"
                     + ("" if result.version == "rand" else " (use --aa-version rand)"))
    for message in result.diagnostics:
        lines.append(f"AutoAttack warning (card marked unreliable): {message}")
    lines.append(attack_model_words(result.attack_model))
    p = result.passes
    lines.append(f"passes: {p.get('forward_passes', 0)} forward ({p.get('forward_samples', 0)} samples), "
                 f"{p.get('backward_passes', 0)} backward; {result.seconds:.1f} s in total"
                 + (f"; resumed {result.batches_loaded} batches" if result.batches_loaded else ""))
    return "\n".join(lines)


def attack_model_words(record: dict) -> str:
    """One line saying which model AutoAttack attacked (``evaluation.cost.autoattack_model``)."""
    if not record:
        return "AutoAttack attacked: not recorded"
    if record.get("exact"):
        return "AutoAttack attacked: the model as it is (--aa-exact; bare pyautoattack's arithmetic)"
    parts = ["frozen parameters"] if record.get("frozen_parameters") else []
    if record.get("fold_batch_norms"):
        parts.append(f"{record['fold_batch_norms']} batch norms folded into convolutions")
    if record.get("channels_last"):
        parts.append("channels_last")
    if record.get("chunk"):
        parts.append(f"forwards of at most {record['chunk']} images")
    return ("AutoAttack attacked: a faster copy of the model (" + ", ".join(parts or ["as it is"])
            + "; same function, other float rounding, so AutoAttack's examples and the CAS on them "
            "may differ slightly from --aa-exact's)")


def _pct(interval: list) -> str:
    if None in interval:
        return MISSING
    return f"{format_number(interval[0], '.1f', scale=100)}-{format_number(interval[1], '.1f', scale=100)}%"


def _num(v: Any) -> str:
    return format_number(v, ".3f")
