"""Score a model's cross-class features: clean and adversarial attribution matrices in one pass.

:func:`score_model` runs the paper protocol by default (untargeted PGD on cross-entropy with the
true label, random start, step ε/4 for ℓ∞ or ε/8 for ℓ2, model in eval mode) and reuses the
logits and features of the final PGD iterate from the attack's own last forward, so each batch
costs one clean forward plus the attack. :func:`score_examples` takes adversarial examples made
elsewhere (e.g. AutoAttack's output). Both stream per-class float64 sums
(:class:`~rb_crossclass.crossclass.AttributionAccumulator`), so shards merge exactly
(:func:`merge_results`); under ``torchrun`` a pass given ``ranks`` splits its batches over the ranks
(batch ``b`` on rank ``b % world_size``) and sums the accumulators with an all-reduce, giving every
rank the one-process result.

Speed (``benchmarks/bench_crossclass.py``, docs Benchmarks page): the attack takes input gradients
only (no parameter gradient is ever allocated: parameters stop requiring grad for the pass), the
features of the last PGD forward are reused, and the defaults pick the fastest set-up whose
numbers differ from plain NCHW float32 only by float rounding: channels_last for convolutional
models on CPU (oneDNN) and CUDA (:func:`~rb_crossclass.core.runtime.prefers_channels_last`), a
cache-sized batch on CPU (:data:`CPU_BATCH_SIZE`) and a copy of the model with its eval-mode batch
norms folded into the convolutions before them (:func:`~rb_crossclass.models.fold.fold_batch_norms`).
On CPU the batch size changes nothing per sample (ℓ∞ random starts are one stream; the kernels
compute each sample alike); channels_last (another summation order) and folding (another
association of the same products) change a forward's outputs by float32 rounding only (clean CAS
by ~2e-7 on a ResNet-18), which PGD's sign steps can turn into different pixels of some
adversarial examples. ``--no-channels-last --no-fold-bn`` (``channels_last=False,
fold_bn=False``) gives the plain NCHW numbers. ``bf16`` (refused where the hardware
lacks it) and ``compile`` (``torch.compile`` of the attack step) are opt-in.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..attacks import PGDConfig, pgd, skip_random_starts
from ..core.io import jsonable
from ..core.runtime import Ranks
from .compute import (
    CPU_BATCH_SIZE,
    GPU_BATCH_SIZE,
    ComputeSettings,
    PassModels,
    PassSettings,
    compile_errors,
    compute_from_legacy,
    default_batch_size,
    forward_features,
    pad_batch,
    pass_models,
    resolve_settings,
    scoring_mode,
    to_device,
)
from .confusion import attribution_confusion_correlation, confusion_update
from .errors import ScoringError
from .metric import (
    AttributionAccumulator,
    attribution_matrix,
    cas,
    feature_sharing_index,
    normalized_cas,
    per_class_scores,
    top_shared_pairs,
)
from .per_class import per_class_block
from .uncertainty import DEFAULT_RESAMPLES, accuracy_interval, bootstrap_cas, interval_withheld

log = logging.getLogger(__name__)

__all__ = ["CPU_BATCH_SIZE", "GPU_BATCH_SIZE", "ScoreResult", "ScoringError", "default_batch_size",
           "merge_results", "result_from_accumulators", "score_examples", "score_model"]

@dataclass
class ScoreResult:
    """Cross-class scores of one model on one set of examples.

    ``matrix`` / ``clean_matrix`` are K×K nested lists (``None`` where a class had no sample);
    accuracies are fractions in [0,1]; ``attack`` describes how the adversarial examples were
    made (``None``: no attack, the "adversarial" numbers are the clean ones). The accumulators
    ``clean_acc_state`` / ``adv_acc_state`` and the correct counts let shards be merged
    (:func:`merge_results`); ``x_adv`` is kept only on request. ``compute`` records how the pass
    ran (device, batch size, channels_last, bf16, compile, number of batch norms folded, CPU
    threads).
    """

    cas: float
    normalized_cas: float
    fsi: float
    clean_cas: float
    clean_normalized_cas: float
    clean_fsi: float
    matrix: list[list[float | None]]
    clean_matrix: list[list[float | None]]
    robust_accuracy: float
    clean_accuracy: float
    n_examples: int
    per_class_counts: list[int]
    per_class_scores: list[float | None]
    clean_per_class_scores: list[float | None]
    top_pairs: list[dict]
    clean_top_pairs: list[dict]
    empty_classes: list[int]
    class_names: list[str]
    attack: dict | None
    seconds: float
    n_clean_correct: int = 0
    n_robust_correct: int = 0
    per_class_clean_correct: list[int] = field(default_factory=list)
    per_class_robust_correct: list[int] = field(default_factory=list)
    intervals: dict = field(default_factory=dict)  # 95 % intervals: accuracies (Wilson), CAS (bootstrap)
    compute: dict | None = None
    adversarial_confusion: list[list[int]] = field(default_factory=list)  # [K,K]: true class → predicted
    confusion_correlation: dict | None = None  # attribution matrix vs adversarial confusion (.confusion)
    clean_acc_state: AttributionAccumulator | None = field(default=None, repr=False, compare=False)
    adv_acc_state: AttributionAccumulator | None = field(default=None, repr=False, compare=False)
    x_adv: torch.Tensor | None = field(default=None, repr=False, compare=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict:
        """JSON-ready dict (NaN becomes ``None``); accumulators and ``x_adv`` are left out."""
        out = {
            "cas": self.cas, "normalized_cas": self.normalized_cas, "fsi": self.fsi,
            "clean_cas": self.clean_cas, "clean_normalized_cas": self.clean_normalized_cas,
            "clean_fsi": self.clean_fsi,
            "robust_accuracy": self.robust_accuracy, "clean_accuracy": self.clean_accuracy,
            "n_examples": self.n_examples, "num_classes": self.num_classes,
            "per_class_counts": list(self.per_class_counts),
            "empty_classes": list(self.empty_classes),
            "per_class_scores": self.per_class_scores,
            "clean_per_class_scores": self.clean_per_class_scores,
            "top_pairs": self.top_pairs, "clean_top_pairs": self.clean_top_pairs,
            "class_names": list(self.class_names),
            "attack": dict(self.attack) if self.attack is not None else None,
            "seconds": self.seconds,
            "compute": dict(self.compute) if self.compute is not None else None,
            "matrix": self.matrix, "clean_matrix": self.clean_matrix,
        }
        if self.per_class_robust_correct:
            out["per_class"] = per_class_block(self.per_class_counts, self.per_class_clean_correct,
                                               self.per_class_robust_correct, self.class_names)
        if self.intervals:
            out["intervals"] = dict(self.intervals)
        if self.adversarial_confusion and self.attack is not None:
            out["adversarial_confusion"] = [list(r) for r in self.adversarial_confusion]
            out["confusion_correlation"] = self.confusion_correlation
        return jsonable(out)


def _nan_to_none(values: torch.Tensor) -> list:
    return [None if math.isnan(v) else v for v in values.tolist()]


def result_from_accumulators(
    clean: AttributionAccumulator,
    adv: AttributionAccumulator,
    n_clean_correct: int,
    n_robust_correct: int,
    *,
    class_names: Sequence[str] | None = None,
    attack: dict | None = None,
    seconds: float = 0.0,
    top_k: int = 5,
    per_class_correct: torch.Tensor | None = None,
    compute: dict | None = None,
    confusion: torch.Tensor | None = None,
) -> ScoreResult:
    """Turn (merged) accumulators and correct counts into a :class:`ScoreResult`
    (``per_class_correct [2,K]``: clean / robust correct points per class, when known). The
    accuracies get Wilson 95 % intervals. ``confusion [K,K]``: adversarial predictions per true
    class (:mod:`.confusion`), when counted."""
    if not torch.equal(clean.counts.cpu(), adv.counts.cpu()):
        raise ScoringError("clean and adversarial accumulators hold different samples")
    k = clean.num_classes
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ScoringError(f"{len(names)} class names given for a {k}-class model")
    n = int(clean.counts.sum())
    mats, scores = {}, {}
    for tag, acc in (("adv", adv), ("clean", clean)):
        vectors = acc.vectors().cpu()
        m = attribution_matrix(vectors)
        mats[tag] = m
        scores[tag] = (cas(m), normalized_cas(m), feature_sharing_index(vectors))
    empty = clean.empty_classes()
    if empty:
        log.warning("classes without samples (left out of CAS): %s", [names[i] for i in empty])
    matrix = [_nan_to_none(r) for r in mats["adv"]]
    confusion_list = [] if confusion is None else confusion.cpu().tolist()
    return ScoreResult(
        cas=scores["adv"][0], normalized_cas=scores["adv"][1], fsi=scores["adv"][2],
        clean_cas=scores["clean"][0], clean_normalized_cas=scores["clean"][1],
        clean_fsi=scores["clean"][2],
        matrix=matrix,
        clean_matrix=[_nan_to_none(r) for r in mats["clean"]],
        robust_accuracy=n_robust_correct / n if n else math.nan,
        clean_accuracy=n_clean_correct / n if n else math.nan,
        n_examples=n,
        per_class_counts=[int(c) for c in clean.counts.cpu().tolist()],
        per_class_scores=_nan_to_none(per_class_scores(mats["adv"])),
        clean_per_class_scores=_nan_to_none(per_class_scores(mats["clean"])),
        top_pairs=top_shared_pairs(mats["adv"], top_k, names),
        clean_top_pairs=top_shared_pairs(mats["clean"], top_k, names),
        empty_classes=empty,
        class_names=names,
        attack=attack,
        per_class_clean_correct=[] if per_class_correct is None else per_class_correct[0].tolist(),
        per_class_robust_correct=[] if per_class_correct is None else per_class_correct[1].tolist(),
        intervals={"clean_accuracy": list(accuracy_interval(n_clean_correct, n)),
                   "robust_accuracy": list(accuracy_interval(n_robust_correct, n))},
        seconds=float(seconds),
        n_clean_correct=int(n_clean_correct),
        n_robust_correct=int(n_robust_correct),
        compute=dict(compute) if compute is not None else None,
        adversarial_confusion=confusion_list,
        confusion_correlation=(attribution_confusion_correlation(matrix, confusion_list)
                               if confusion_list else None),
        clean_acc_state=clean,
        adv_acc_state=adv,
    )


def merge_results(results: Sequence[ScoreResult]) -> ScoreResult:
    """Combine results of disjoint shards of one dataset (same model and attack) exactly:
    sums, counts and correct counts add; every score is recomputed; seconds add up."""
    if not results:
        raise ScoringError("nothing to merge")
    if any(r.clean_acc_state is None or r.adv_acc_state is None for r in results):
        raise ScoringError("results without accumulators (e.g. read back from JSON) cannot be merged")
    first = results[0]
    clean = AttributionAccumulator.from_state_dict(first.clean_acc_state.state_dict())
    adv = AttributionAccumulator.from_state_dict(first.adv_acc_state.state_dict())
    for r in results[1:]:
        clean.merge_(r.clean_acc_state)
        adv.merge_(r.adv_acc_state)
    per_class = None
    if all(r.per_class_robust_correct for r in results):
        per_class = sum(torch.tensor([r.per_class_clean_correct, r.per_class_robust_correct])
                        for r in results)
    confusion = None
    if all(r.adversarial_confusion for r in results):
        confusion = sum(torch.tensor(r.adversarial_confusion, dtype=torch.int64) for r in results)
    return result_from_accumulators(
        clean, adv,
        sum(r.n_clean_correct for r in results), sum(r.n_robust_correct for r in results),
        class_names=first.class_names, attack=first.attack,
        seconds=sum(r.seconds for r in results), per_class_correct=per_class, compute=first.compute,
        confusion=confusion,
    )


# --------------------------------------------------------------------------- the pass
AdvFn = Callable[[PassModels, torch.Tensor, torch.Tensor, int, int, Callable[[float], None]],
                 tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
"""``adv_fn(models, x_batch, y_batch, start, end, advance) -> (x_adv, logits [B,K], features [B,D])``;
``advance(k)`` moves the progress bar by ``k`` images' worth of work (fractions allowed) while the
batch is attacked, so a pass of one batch does not sit at 0 % until it ends."""
SkipFn = Callable[[torch.Tensor], None]
"""``skip_fn(x_batch)``: what a rank does for a batch it does not own (keep RNG streams aligned)."""


def _check_model(model: nn.Module) -> None:
    if not (hasattr(model, "forward_with_features") and isinstance(getattr(model, "head", None), nn.Linear)):
        raise ScoringError(
            f"{type(model).__name__} is not a FeatureClassifier (needs forward_with_features and a "
            "linear head): wrap it with rb_crossclass.models.wrap_model"
        )


def _check_data(x: torch.Tensor, y: torch.Tensor, num_classes: int) -> None:
    if x.dim() != 4 or y.dim() != 1 or len(x) != len(y):
        raise ScoringError(f"need x [N,C,H,W] and y [N], got {tuple(x.shape)} and {tuple(y.shape)}")
    if len(y) == 0:
        raise ScoringError("no examples to score")
    if int(y.min()) < 0 or int(y.max()) >= num_classes:
        raise ScoringError(
            f"labels span [{int(y.min())}, {int(y.max())}] but the model has {num_classes} classes"
        )


def _bf16_mark(compute: PassSettings) -> dict:
    """``{"bf16": True}`` for a bf16 pass, so every record of its scores (JSON, card) says so."""
    return {"bf16": True} if compute.bf16 else {}


def _run_pass(model: nn.Module, x: torch.Tensor, y: torch.Tensor, adv_fn: AdvFn | None, *,
              compute: PassSettings, class_names: Sequence[str] | None, attack: dict | None,
              progress: bool, keep_adversarial: bool, desc: str, ranks: Ranks | None = None,
              skip_fn: SkipFn | None = None, intervals: bool = False, seed: int = 0) -> ScoreResult:
    from ..core.progress import progress_bar

    ranks = ranks or Ranks()
    if keep_adversarial and ranks.world_size > 1:
        raise ScoringError("keep_adversarial is not available in a sharded pass")
    start_time = time.perf_counter()
    device, batch_size, channels_last = compute.device, compute.batch_size, compute.channels_last
    model.to(device)
    weight = model.head.weight.detach()
    k, d = weight.shape
    _check_data(x, y, k)
    clean = AttributionAccumulator(k, d, device=device)
    adv = AttributionAccumulator(k, d, device=device)
    correct = torch.zeros(2, k, dtype=torch.int64, device=device)  # per class: clean, adversarial
    confusion = torch.zeros(k, k, dtype=torch.int64, device=device)  # true class → adversarial prediction
    kept: list[torch.Tensor] = []
    points: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # features for the bootstrap
    n = len(y)
    bar = progress_bar(total=n, desc=desc, unit="img", disable=not (progress and ranks.main), leave=False)
    with scoring_mode(model, channels_last), bar:
        models, folded = pass_models(model, x, compute)
        for b, start in enumerate(range(0, n, batch_size)):
            end = min(start + batch_size, n)
            xb = to_device(x[start:end], device, channels_last)
            if not ranks.owns(b):
                if skip_fn is not None:
                    skip_fn(xb)
                continue
            yb = y[start:end].to(device, torch.int64, non_blocking=True)
            logits_c, feats_c = forward_features(models.eager, xb, compute.bf16)
            clean.update(feats_c, weight, yb)
            correct[0] += torch.bincount(yb[logits_c.argmax(1) == yb], minlength=k)
            advance = _BatchProgress(bar, end - start)
            if adv_fn is None:
                x_adv, logits_a, feats_a = xb, logits_c, feats_c
            else:
                x_adv, logits_a, feats_a = adv_fn(models, xb, yb, start, end, advance)
            adv.update(feats_a, weight, yb)
            correct[1] += torch.bincount(yb[logits_a.argmax(1) == yb], minlength=k)
            confusion_update(confusion, yb, logits_a.argmax(1))
            if intervals:
                points.append((feats_c.detach().float().cpu(), feats_a.detach().float().cpu(), yb.cpu()))
            if keep_adversarial:
                kept.append(x_adv.detach().to("cpu", memory_format=torch.contiguous_format))
            advance.finish()
    if ranks.world_size > 1:
        for acc in (clean, adv):
            ranks.sum_(acc.sums)
            ranks.sum_(acc.counts)
        ranks.sum_(correct)
        ranks.sum_(confusion)
    totals = correct.sum(1)
    result = result_from_accumulators(
        clean, adv, int(totals[0]), int(totals[1]), class_names=class_names, attack=attack,
        seconds=time.perf_counter() - start_time, per_class_correct=correct.cpu(),
        compute=compute.as_dict(folded), confusion=confusion.cpu(),
    )
    if intervals:
        result.intervals.update(_cas_intervals(points, weight, ranks, seed))
    if keep_adversarial:
        result.x_adv = torch.cat(kept)
    return result


class _BatchProgress:
    """Moves a bar over one batch of ``size`` images in whole steps, from fractional advances
    (the attack's steps); :meth:`finish` completes the batch, so the bar ends exactly at N."""

    def __init__(self, bar, size: int) -> None:
        self.bar, self.size, self.done, self.shown = bar, size, 0.0, 0

    def __call__(self, k: float) -> None:
        self.done = min(self.size, self.done + k)
        whole = int(self.done) - self.shown
        if whole > 0:
            self.bar.update(whole)
            self.shown += whole

    def finish(self) -> None:
        if self.size > self.shown:
            self.bar.update(self.size - self.shown)
            self.shown = self.size


def _cas_intervals(points: list, weight: torch.Tensor, ranks: Ranks, seed: int) -> dict:
    """Bootstrap 95 % intervals of CAS and clean CAS from every rank's per-point features, or
    ``cas_withheld`` (the reason) when a class has too few points for one
    (:func:`~rb_crossclass.crossclass.uncertainty.interval_withheld`)."""
    parts = [p for part in ranks.gather(points) for p in part]
    clean = torch.cat([p[0] for p in parts])
    adv = torch.cat([p[1] for p in parts])
    labels = torch.cat([p[2] for p in parts])
    withheld = interval_withheld(torch.bincount(labels.long().cpu(), minlength=weight.shape[0]).tolist())
    if withheld:
        return {"cas_withheld": withheld}
    return {"cas": list(bootstrap_cas(adv, labels, weight, seed=seed)),
            "clean_cas": list(bootstrap_cas(clean, labels, weight, seed=seed)),
            "bootstrap_resamples": DEFAULT_RESAMPLES}


_SCORE_MODEL_LEGACY = ("batch_size", "device", "autocast", "channels_last", "compile", "fold_bn")
_SCORE_EXAMPLES_LEGACY = ("batch_size", "device", "autocast", "channels_last", "fold_bn")


def score_model(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    attack: PGDConfig | None,
    compute: ComputeSettings | None = None,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
    progress: bool = True,
    keep_adversarial: bool = False,
    ranks: Ranks | None = None,
    intervals: bool = False,
    desc: str = "score",
    **legacy: Any,
) -> ScoreResult:
    """Clean and adversarial cross-class scores of ``model`` on ``x: [N,C,H,W]`` in [0,1], ``y: [N]``.

    ``attack``: a :class:`PGDConfig` (paper protocol: ``PGDConfig(eps=8/255)`` = untargeted
    PGD-20 on CE, random start, step ε/4 ℓ∞ / ε/8 ℓ2) or ``None`` (clean only; the adversarial
    numbers then equal the clean ones). The model runs in eval mode without parameter gradients
    (modes, flags and memory formats restored afterwards). The attack's random starts come from
    one generator on ``device`` seeded with ``seed``: same seed, batch size, memory format,
    threads and device give the same result.

    ``compute`` (:class:`~rb_crossclass.crossclass.compute.ComputeSettings`, default: CPU and
    the defaults): device, batch size (``None`` = :func:`default_batch_size` of the device),
    channels_last (``None`` = :func:`~rb_crossclass.core.runtime.prefers_channels_last`), ``fold_bn``
    (a copy of the model with its eval-mode batch norms folded, checked on a probe batch; the
    model itself is untouched), ``bf16`` (raises
    :class:`~rb_crossclass.core.runtime.Bf16UnsupportedError` where the device lacks native bf16),
    ``compile`` (``torch.compile`` of the attack's forward and input-backward: one compilation
    for the batch shape, the last batch padded to it; 40–65 s measured for a ResNet-18 on this
    project's 2-core CPU, no faster than eager there; float rounding differs from eager).
    The old flat keywords (``batch_size``, ``device``, ``autocast``, ``channels_last``,
    ``compile``, ``fold_bn``) still work with a :class:`DeprecationWarning`; any other keyword
    raises :class:`TypeError`. ``keep_adversarial``
    stores the adversarial examples (CPU) on ``result.x_adv``. ``ranks`` shards the batches over
    ``torchrun`` ranks (every rank returns the one-process result); ``desc`` labels the
    progress bar. Accuracies always carry
    Wilson 95 % intervals; ``intervals`` adds bootstrap intervals of CAS (it keeps every point's
    features, ``[N,D]`` floats, until the end of the pass).
    """
    settings = compute_from_legacy(compute, legacy, "score_model", _SCORE_MODEL_LEGACY)
    _check_model(model)
    compute = resolve_settings(model, settings)
    device = compute.device
    attack_info = None
    adv_fn: AdvFn | None = None
    skip_fn: SkipFn | None = None
    if attack is not None:
        if attack.targeted:
            raise ScoringError("the cross-class protocol uses an untargeted attack")
        generator = torch.Generator(device=device).manual_seed(int(seed))
        attack_info = {**attack.as_dict(), "seed": int(seed), **_bf16_mark(compute)}

        shape_batch = min(compute.batch_size, len(y))  # the one batch shape a compiled step sees

        def adv_fn(models, xb, yb, start, end, advance):
            n = len(yb)
            share = n / max(1, attack.steps * attack.restarts)  # the batch's work per PGD step
            if compute.compile and n < shape_batch:  # pad, so the last batch does not recompile
                xb, yb = pad_batch(xb, shape_batch), pad_batch(yb, shape_batch)
            with compile_errors(compute.compile):
                res = pgd(models.attack, xb, yb, attack, generator=generator, autocast=compute.bf16,
                          return_features=True, on_step=lambda: advance(share))
            return res.x_adv[:n], res.logits[:n], res.features[:n]

        def skip_fn(xb):
            skip_random_starts(attack, xb, generator)

    return _run_pass(model, x, y, adv_fn, compute=compute, class_names=class_names,
                     attack=attack_info, progress=progress, keep_adversarial=keep_adversarial,
                     desc=desc, ranks=ranks, skip_fn=skip_fn, intervals=intervals, seed=seed)


def score_examples(
    model: nn.Module,
    x_clean: torch.Tensor,
    x_adv: torch.Tensor,
    y: torch.Tensor,
    *,
    compute: ComputeSettings | None = None,
    class_names: Sequence[str] | None = None,
    progress: bool = True,
    attack: dict | None = None,
    ranks: Ranks | None = None,
    intervals: bool = False,
    seed: int = 0,
    **legacy: Any,
) -> ScoreResult:
    """Scores from adversarial examples made by the caller (e.g. AutoAttack's output).

    ``x_clean``, ``x_adv``: ``[N,C,H,W]`` in [0,1] (``x_adv[n]`` is the adversarial example of
    ``x_clean[n]``), ``y: [N]``. ``attack`` is recorded as given (e.g. ``{"name": "autoattack",
    ...}``). ``compute`` as in :func:`score_model` (``compile`` does not apply: there is no attack
    step); given the same examples and settings as :func:`score_model`, the result is identical
    to it. The old flat keywords (``batch_size``, ``device``, ``autocast``, ``channels_last``,
    ``fold_bn``) still work with a :class:`DeprecationWarning`. Raises :class:`ScoringError` when
    ``x_adv`` and ``x_clean`` differ in shape.
    """
    settings = compute_from_legacy(compute, legacy, "score_examples", _SCORE_EXAMPLES_LEGACY)
    if x_adv.shape != x_clean.shape:
        raise ScoringError(f"x_adv {tuple(x_adv.shape)} and x_clean {tuple(x_clean.shape)} differ in shape")
    _check_model(model)
    compute = resolve_settings(model, settings.replace(compile=False))

    def adv_fn(models, xb, yb, start, end, advance):
        xa = to_device(x_adv[start:end], compute.device, compute.channels_last)
        logits, feats = forward_features(models.eager, xa, compute.bf16)
        return xa, logits, feats

    return _run_pass(model, x_clean, y, adv_fn, compute=compute, class_names=class_names,
                     attack={**(attack if attack is not None else {"name": "given"}), **_bf16_mark(compute)},
                     progress=progress, keep_adversarial=False, desc="score (given examples)",
                     ranks=ranks, intervals=intervals, seed=seed)
