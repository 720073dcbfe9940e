"""The AutoAttack driver: pyautoattack's ``run_standard_evaluation``, per attack and per batch.

:func:`run_autoattack` reproduces ``AutoAttack.run_standard_evaluation`` exactly: a clean pass in
batches over the N points, then for each attack of the version, in order, the still-robust points
(in index order) cut into batches of ``batch_size``, each attacked by the same pyautoattack attack
object with its seed set per batch (pyautoattack re-seeds torch at the start of every ``perturb``
call); a point is non-robust once a batch's adversarial output is misclassified. Because each
batch's result depends only on its points and the seed, a batch can be

- **resumed**: with a state folder (:class:`~rb_crossclass.evaluate.state.EvalState`) every
  finished batch is written atomically and a restarted run loads it instead of attacking again;
- **sharded**: under ``torchrun`` batch ``b`` of every stage belongs to rank ``b % world_size``;
  after each stage the ranks exchange their batch records, so every rank holds the same flags and
  adversarial examples as a one-process run.

Before the first attack the settings are reconciled with the model's number of classes K
(:func:`reconcile_with_classes`: target counts capped at K−1, attacks whose DLR loss needs more
classes dropped), and every one of pyautoattack's own sanity checks runs (randomness, probability
outputs, dynamic defenses, class counts, zero gradients inside APGD, Square finding what the
gradient attacks missed); their warnings are returned as ``diagnostics``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from ..core.runtime import Ranks
from .attack_model import attack_model
from .passes import PassCounter
from .protocol import AutoAttackConfig, EvaluateError
from .state import EvalState

log = logging.getLogger(__name__)


@dataclass
class AutoAttackOutcome:
    """Per-point results of AutoAttack on ``x: [N,C,H,W]`` in [0,1].

    ``x_adv`` equals ``x`` where no attack succeeded (AutoAttack's own convention); ``y_adv`` is the
    model's prediction on ``x_adv``'s successful points and on clean points otherwise.
    """

    clean_flags: torch.Tensor  # [N] bool: correct on clean inputs
    robust_flags: torch.Tensor  # [N] bool: correct under every attack
    x_adv: torch.Tensor  # [N,C,H,W]
    y_adv: torch.Tensor  # [N]
    attacks: list[str]
    robust_after: dict[str, int]  # "clean" and each attack that ran -> robust count
    seconds: dict[str, float]  # "checks", "clean" and each attack
    batches_run: int = 0
    batches_loaded: int = 0
    passes: dict[str, int] = field(default_factory=dict)
    diagnostics: list[str] = field(default_factory=list)  # pyautoattack's warnings, in order
    adjustments: dict[str, str] = field(default_factory=dict)  # settings reconciled with K
    attack_model: dict = field(default_factory=dict)  # AttackModelSettings.as_dict(): the speed-ups used


def _build_adversary(model: nn.Module, config: AutoAttackConfig, device):
    from ..compat import make_autoattack

    return make_autoattack(model, norm=config.norm, eps=config.eps, version=config.version,
                           attacks=list(config.attacks) if config.attacks else None,
                           seed=config.seed, device=device)


def _perturb(adversary, attack: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One attack on one batch, configured exactly as ``run_standard_evaluation`` does it."""
    seed = adversary.get_seed()
    if attack in ("apgd-ce", "apgd-dlr"):
        adversary.apgd.loss = "ce" if attack == "apgd-ce" else "dlr"
        adversary.apgd.seed = seed
        return adversary.apgd.perturb(x, y)
    if attack == "fab":
        adversary.fab.targeted = False
        adversary.fab.seed = seed
        return adversary.fab.perturb(x, y)
    if attack == "square":
        adversary.square.seed = seed
        return adversary.square.perturb(x, y)
    if attack == "apgd-t":
        adversary.apgd_targeted.seed = seed
        return adversary.apgd_targeted.perturb(x, y)
    if attack == "fab-t":
        adversary.fab.targeted = True
        adversary.fab.n_restarts = 1
        adversary.fab.seed = seed
        return adversary.fab.perturb(x, y)
    raise EvaluateError(f"attack {attack!r} is not supported")


def reconcile_with_classes(adversary, num_classes: int) -> dict[str, str]:
    """Fit the attack settings to K = ``num_classes`` before anything runs; returns what changed.

    APGD-T and FAB-T attack at most K−1 target classes; the DLR loss needs K ≥ 3 (APGD-DLR) and
    its targeted form K ≥ 4 (APGD-T), so those attacks are dropped for smaller K. Raises
    :class:`EvaluateError` for K < 2 or when no attack is left.
    """
    if num_classes < 2:
        raise EvaluateError(f"the model has {num_classes} class(es): AutoAttack needs at least 2")
    changes: dict[str, str] = {}
    for name, attack in (("apgd-t", adversary.apgd_targeted), ("fab-t", adversary.fab)):
        if name in adversary.attacks_to_run and attack.n_target_classes > num_classes - 1:
            changes[f"{name}.n_target_classes"] = f"{attack.n_target_classes} -> {num_classes - 1}"
            attack.n_target_classes = num_classes - 1
    needs = {"apgd-dlr": 3, "apgd-t": 4}
    for name, minimum in needs.items():
        if name in adversary.attacks_to_run and num_classes < minimum:
            adversary.attacks_to_run = [a for a in adversary.attacks_to_run if a != name]
            changes[name] = (f"dropped: its DLR loss needs at least {minimum} classes, "
                             f"the model has {num_classes}")
    if not adversary.attacks_to_run:
        raise EvaluateError(f"no AutoAttack attack can run on a {num_classes}-class model")
    return changes


def _run_checks(adversary, x: torch.Tensor, y: torch.Tensor, batch_size: int, version: str) -> int:
    """pyautoattack's sanity checks before the attacks (randomized / probability outputs / dynamic
    defenses / class counts); returns the number of classes the model outputs."""
    from pyautoattack import checks

    xb, yb = x[:batch_size].to(adversary.device), y[:batch_size].to(adversary.device)
    if version != "rand":
        checks.check_randomized(adversary.get_logits, xb, yb, bs=batch_size, logger=adversary.logger)
    n_cls = checks.check_range_output(adversary.get_logits, xb, logger=adversary.logger)
    checks.check_dynamic(adversary.model, xb, False, logger=adversary.logger)
    checks.check_n_classes(n_cls, adversary.attacks_to_run, adversary.apgd_targeted.n_target_classes,
                           adversary.fab.n_target_classes, logger=adversary.logger)
    return int(n_cls)


class _Warnings(logging.Handler):
    """Collects the warnings pyautoattack logs (its checks report through its logger)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message not in self.messages:
            self.messages.append(message)


def _batches(n: int, bs: int) -> list[tuple[int, int]]:
    return [(s, min(s + bs, n)) for s in range(0, n, bs)]


def run_autoattack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: AutoAttackConfig,
    *,
    device: str | torch.device = "cpu",
    state: EvalState | None = None,
    ranks: Ranks | None = None,
    progress: bool = True,
    checks: bool = True,
    exact: bool = False,
) -> AutoAttackOutcome:
    """AutoAttack on ``x: [N,C,H,W]`` in [0,1], ``y: [N]``, per attack and per batch.

    With ``exact=True`` gives exactly the robust flags and adversarial examples of
    ``AutoAttack(model, norm, eps, version, seed).run_standard_evaluation(x, y,
    batch_size=config.batch_size)`` (same device). By default pyautoattack attacks
    :func:`~rb_crossclass.evaluate.attack_model.attack_model`'s faster form of the model (same
    function, other float rounding; see that module for what may differ).
    ``state`` makes it resumable, ``ranks`` splits batches over ``torch.distributed`` ranks.
    """
    ranks = ranks or Ranks.current()
    device = torch.device(device)
    # pyautoattack views gradients with .view(): inputs must be contiguous NCHW (not channels_last)
    x, y = x.contiguous(), y.contiguous()
    attacked, speedups = attack_model(model, x, device, exact=exact)
    counter = PassCounter(attacked)
    adversary = _build_adversary(counter, config, device)
    warnings = _Warnings()
    adversary.logger.addHandler(warnings)
    try:
        k = getattr(model, "num_classes", None)
        if k is None:  # not a FeatureClassifier: ask the model itself (not counted as a pass)
            with torch.no_grad():
                k = int(model(x[:1].to(device)).shape[-1])
        adjustments = reconcile_with_classes(adversary, k)
        seconds: dict[str, float] = {}
        t0 = time.perf_counter()
        if checks and ranks.main:
            _run_checks(adversary, x, y, config.batch_size, config.version)
        seconds["checks"] = time.perf_counter() - t0
        run = _Run(adversary, x, y, config.batch_size, device, state, ranks, progress and ranks.main)
        _attack_all(run, adversary, seconds)
    finally:
        adversary.logger.removeHandler(warnings)
    square = _square_check(adversary, run.robust_after, len(y)) if checks else []
    totals = ranks.sum_ints({**counter.counts(), "batches_run": run.batches_run,
                             "batches_loaded": state.loaded if state is not None else 0})
    diagnostics = [m for part in ranks.gather(warnings.messages) for m in part]
    return AutoAttackOutcome(
        clean_flags=run.clean_flags, robust_flags=run.robust_flags, x_adv=run.x_adv, y_adv=run.y_adv,
        attacks=list(adversary.attacks_to_run), robust_after=run.robust_after, seconds=seconds,
        batches_run=totals.pop("batches_run"), batches_loaded=totals.pop("batches_loaded"),
        passes=totals, diagnostics=list(dict.fromkeys(diagnostics + square)),
        adjustments=adjustments, attack_model=speedups.as_dict(),
    )


def _attack_all(run: _Run, adversary, seconds: dict[str, float]) -> None:
    """The clean pass, then every attack in order over the points still robust."""
    n = len(run.y)
    with torch.no_grad():
        t0 = time.perf_counter()
        run.clean_pass()
        seconds["clean"] = time.perf_counter() - t0
        for attack in adversary.attacks_to_run:
            if not run.robust_flags.any():
                log.info("no robust points left, skipping %s and later attacks", attack)
                break
            t0 = time.perf_counter()
            run.attack_stage(attack)
            seconds[attack] = time.perf_counter() - t0
            log.info("robust accuracy after %s: %.2f%% (%.1f s)", attack,
                     100 * run.robust_after[attack] / n, seconds[attack])


def _square_check(adversary, robust_after: dict[str, int], n: int) -> list[str]:
    """pyautoattack's check that Square (gradient-free) did not find what gradient attacks missed;
    returns its warning, if any."""
    from pyautoattack import checks

    collect = _Warnings()
    adversary.logger.addHandler(collect)
    try:
        checks.check_square_sr({k: v / n for k, v in robust_after.items()}, logger=adversary.logger)
    finally:
        adversary.logger.removeHandler(collect)
    return collect.messages


class _Run:
    """The state of one run: flags and adversarial examples, updated stage by stage."""

    def __init__(self, adversary, x: torch.Tensor, y: torch.Tensor, batch_size: int, device: torch.device,
                 state: EvalState | None, ranks: Ranks, progress: bool) -> None:
        self.adversary, self.x, self.y, self.bs, self.device = adversary, x, y, batch_size, device
        self.state, self.ranks, self.progress = state, ranks, progress
        self.batches_run = 0
        self.robust_after: dict[str, int] = {}

    def clean_pass(self) -> None:
        """Predictions on the clean points (loaded from the state folder when there)."""
        n = len(self.y)
        clean = self.state.load_clean(n) if self.state is not None else None
        if clean is None:
            pred = torch.full((n,), -1, dtype=torch.long)
            for b, (s, e) in enumerate(_batches(n, self.bs)):
                if self.ranks.owns(b):
                    out = self.adversary.get_logits(self.x[s:e].clone().to(self.device)).max(dim=1)[1]
                    pred[s:e] = out.cpu()
            for part in self.ranks.gather(pred):
                pred = torch.where(part >= 0, part, pred)
            clean = {"pred": pred}
            if self.state is not None and self.ranks.main:
                self.state.save_clean(clean)
        self.y_adv = clean["pred"].clone()
        self.clean_flags = self.y_adv.eq(self.y.cpu())
        self.robust_flags = self.clean_flags.clone()
        self.x_adv = self.x.clone().detach()
        self.robust_after["clean"] = int(self.clean_flags.sum())

    def attack_stage(self, attack: str) -> None:
        """One attack over the still-robust points, batch by batch; every rank ends with all records."""
        from ..core.progress import progress_bar

        robust_idx = torch.nonzero(self.robust_flags, as_tuple=False).flatten()
        owned = [b for b in range(math.ceil(len(robust_idx) / self.bs)) if self.ranks.owns(b)]
        records: dict[int, dict] = {}
        with progress_bar(total=sum(len(robust_idx[b * self.bs:(b + 1) * self.bs]) for b in owned),
                  desc=attack, unit="pt", disable=not self.progress) as bar:
            for b in owned:
                idx = robust_idx[b * self.bs:(b + 1) * self.bs]
                records[b] = self._batch(attack, b, idx)
                bar.update(len(idx))
                bar.set_postfix(fooled=int(records[b]["fooled"].sum()))
        for part in self.ranks.gather(records):
            for rec in part.values():
                fallen = rec["indices"][rec["fooled"]]
                self.robust_flags[fallen] = False
                self.x_adv[fallen] = rec["adv"].to(self.x_adv.dtype)
                self.y_adv[fallen] = rec["pred"]
        self.robust_after[attack] = int(self.robust_flags.sum())

    def _batch(self, attack: str, b: int, idx: torch.Tensor) -> dict:
        rec = self.state.load_batch(attack, b, idx) if self.state is not None else None
        if rec is not None:
            return rec
        xb, yb = self.x[idx].clone().to(self.device), self.y[idx].clone().to(self.device)
        adv = _perturb(self.adversary, attack, xb, yb)
        out = self.adversary.get_logits(adv).max(dim=1)[1]
        fooled = ~yb.eq(out)
        rec = {"indices": idx.clone(), "fooled": fooled.cpu(), "adv": adv[fooled].detach().cpu(),
               "pred": out[fooled].cpu()}
        self.batches_run += 1
        if self.state is not None:
            self.state.save_batch(attack, b, rec)
        return rec
