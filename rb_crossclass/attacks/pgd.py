"""Projected gradient descent (Madry et al.) for ℓ∞ and ℓ2 threat models.

Gradients are taken with respect to the input only (``torch.autograd.grad``), so no parameter
gradient is computed or accumulated during the attack. The model runs in whatever mode it is in
(eval for evaluation, train for the classic PGD-AT inner loop). Results always lie in the ε-ball
around ``x`` and in [0,1]. Norms, ε and the default step come from
:mod:`rb_crossclass.core.threat`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import RBCrossclassError
from ..core.threat import PAPER_PGD_STEPS, check_norm, pgd_step_size

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``loss(logits [B,K], y [B]) -> per-sample loss [B]`` that the attacker ascends."""


class AttackConfigError(RBCrossclassError, ValueError):
    """Invalid attack settings (norm, ε, steps, restarts); the message names the setting."""


@dataclass(frozen=True)
class PGDConfig:
    """PGD settings: radius ``eps`` (finite, ≥ 0) in ``norm`` (``Linf`` | ``L2``), ``steps`` ≥ 0
    iterations of ``step_size`` (``None``: the cross-class protocol's ε/4 for ℓ∞, ε/8 for ℓ2),
    uniform ``random_start`` in the ball, ``restarts`` ≥ 1, untargeted unless ``targeted``."""

    eps: float
    steps: int = PAPER_PGD_STEPS
    step_size: float | None = None
    norm: str = "Linf"
    random_start: bool = True
    restarts: int = 1
    targeted: bool = False

    def __post_init__(self) -> None:
        try:
            check_norm(self.norm)
        except RBCrossclassError as err:
            raise AttackConfigError(str(err)) from err
        if not (isinstance(self.eps, (int, float)) and math.isfinite(self.eps) and self.eps >= 0):
            raise AttackConfigError(f"attack eps must be a finite number >= 0, got {self.eps!r}")
        if self.step_size is not None and not (math.isfinite(self.step_size) and self.step_size >= 0):
            raise AttackConfigError(f"attack step size must be a finite number >= 0, got {self.step_size!r}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise AttackConfigError(f"attack steps must be an integer >= 0, got {self.steps!r}")
        if isinstance(self.restarts, bool) or not isinstance(self.restarts, int) or self.restarts < 1:
            raise AttackConfigError(f"attack restarts must be an integer >= 1, got {self.restarts!r}")

    @property
    def step(self) -> float:
        """The step actually taken: ``step_size``, or the protocol default for the norm."""
        if self.step_size is not None:
            return self.step_size
        return pgd_step_size(self.eps, self.norm)

    def as_dict(self) -> dict:
        return {"name": "pgd", "norm": self.norm, "eps": self.eps, "steps": self.steps,
                "step_size": self.step, "random_start": self.random_start,
                "restarts": self.restarts, "targeted": self.targeted}

    def with_(self, **kw) -> PGDConfig:
        return replace(self, **kw)


@dataclass
class AttackResult:
    """``x_adv [B,C,H,W]`` in [0,1]; logits ``[B,K]`` and features ``[B,D]`` of ``x_adv`` from
    one final forward (features only for models with ``forward_with_features``)."""

    x_adv: torch.Tensor
    logits: torch.Tensor
    features: torch.Tensor | None = None


def ce_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float(), y, reduction="none")


def _per_sample_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (t.dim() - 1)))


def _project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    if norm == "Linf":
        return delta.clamp(-eps, eps)
    factor = (eps / _per_sample_norm(delta)).clamp(max=1.0)
    return delta * factor


def _random_start(x: torch.Tensor, eps: float, norm: str, g: torch.Generator | None) -> torch.Tensor:
    """A random start for ``x [B,...]``: uniform in the ℓ∞ ball, or a uniform direction times a
    uniform radius in the ℓ2 ball.

    Both norms take exactly ``numel(x[i])`` (ℓ∞) or ``numel(x[i]) + 1`` (ℓ2) consecutive uniform
    draws per point, in point order, from one ``torch.rand`` call; on a sequential generator (CPU)
    point ``i``'s start is therefore a function of the seed and ``i`` only, whatever the batch size.
    The ℓ2 direction is the inverse normal CDF of those draws (an isotropic Gaussian, normalised),
    not ``torch.randn``, whose CPU kernel switches algorithm with the tensor size and would tie the
    start to the batch shape.
    """
    if norm == "Linf":
        return (torch.rand(x.shape, generator=g, device=x.device, dtype=x.dtype) * 2 - 1) * eps
    per_point = x[0].numel() if x.shape[0] else 0
    u = torch.rand((x.shape[0], per_point + 1), generator=g, device=x.device, dtype=x.dtype)
    # rand is in [0,1): only 0 maps to an infinite quantile
    direction = torch.special.ndtri(u[:, :-1].clamp_min(torch.finfo(x.dtype).tiny)).view(x.shape)
    radius = u[:, -1].view((x.shape[0],) + (1,) * (x.dim() - 1))
    return direction / _per_sample_norm(direction) * radius * eps


def _forward(model: nn.Module, x: torch.Tensor, want_features: bool):
    if want_features and hasattr(model, "forward_with_features"):
        return model.forward_with_features(x)
    return model(x), None


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: PGDConfig,
    *,
    loss_fn: LossFn = ce_loss,
    target: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    autocast: bool | None = None,
    return_features: bool = True,
    on_step: Callable[[], None] | None = None,
) -> AttackResult:
    """Run PGD on ``x: [B,C,H,W]`` in [0,1] with labels ``y: [B]``.

    Untargeted: ascend ``loss_fn(logits, y)``. Targeted (``config.targeted``): descend
    ``loss_fn(logits, target)``. With several restarts each sample keeps the first restart
    that fools the model (else the one with the highest loss). ``autocast=True`` runs forward
    passes in bf16, ``None`` keeps the caller's autocast state (a training step under
    ``torch.autocast``); the perturbation stays fp32. ``on_step`` is called after every step of
    every restart (progress bars).
    """
    if config.targeted and target is None:
        raise AttackConfigError("a targeted attack needs `target` labels")
    x = x.detach()
    if autocast is None:
        autocast = torch.is_autocast_enabled(x.device.type)
    eps, norm, step = config.eps, config.norm, config.step
    sign = -1.0 if config.targeted else 1.0
    labels = target if config.targeted else y
    device_type = x.device.type
    best: AttackResult | None = None
    best_loss = torch.full((x.shape[0],), -float("inf"), device=x.device)
    best_success = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    for _ in range(config.restarts):
        delta = _random_start(x, eps, norm, generator) if config.random_start else torch.zeros_like(x)
        delta = ((x + delta).clamp(0, 1) - x).detach()
        for _ in range(config.steps):
            delta.requires_grad_(True)
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=autocast):
                logits = model(x + delta)
            loss = loss_fn(logits.float(), labels).sum()
            (grad,) = torch.autograd.grad(loss, delta)
            with torch.no_grad():
                if norm == "Linf":
                    delta = delta + sign * step * grad.sign()
                else:
                    delta = delta + sign * step * grad / _per_sample_norm(grad)
                delta = _project(delta, eps, norm)
                delta = (x + delta).clamp(0, 1) - x
            if on_step is not None:
                on_step()
        with torch.no_grad(), torch.autocast(device_type, dtype=torch.bfloat16, enabled=autocast):
            logits, feats = _forward(model, x + delta, return_features)
        logits = logits.float()
        feats = feats.float() if feats is not None else None
        with torch.no_grad():
            loss_now = sign * loss_fn(logits, labels)
            pred = logits.argmax(1)
            success = pred == target if config.targeted else pred != y
        result = AttackResult((x + delta).detach(), logits.detach(),
                              feats.detach() if feats is not None else None)
        if best is None:
            best, best_loss, best_success = result, loss_now, success
            continue
        take = (~best_success & success) | (~best_success & ~success & (loss_now > best_loss))
        best = _merge(best, result, take)
        best_loss = torch.where(take, loss_now, best_loss)
        best_success = best_success | success
    assert best is not None
    return best


def skip_random_starts(config: PGDConfig, like: torch.Tensor, generator: torch.Generator | None) -> None:
    """Draw from ``generator`` exactly what :func:`pgd` draws for a batch shaped like ``like``,
    without attacking: a rank of a sharded pass calls it for the batches it does not own, so every
    batch sees the same random start as in a one-process pass."""
    if config.random_start:
        for _ in range(config.restarts):
            _random_start(like, config.eps, config.norm, generator)


def _merge(a: AttackResult, b: AttackResult, take: torch.Tensor) -> AttackResult:
    def pick(u, v):
        if u is None or v is None:
            return None
        mask = take.view(-1, *([1] * (u.dim() - 1)))
        return torch.where(mask, v, u)

    return AttackResult(pick(a.x_adv, b.x_adv), pick(a.logits, b.logits), pick(a.features, b.features))
