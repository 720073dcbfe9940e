"""Inner maximizations of adversarial training, composed into recipes.

Each inner attack answers two questions for a batch ``x: [B,C,H,W]`` in [0,1], ``y: [B]``:
which inputs the recipe's criterion sees (:meth:`examples`), and which loss parts the attack adds
itself (:meth:`regularizer`):

- :class:`NoAttack` — the clean batch, nothing added (natural training);
- :class:`PGDAttack` — PGD on cross-entropy (Madry et al., 2018); the criterion sees ``x'``;
- :class:`TradesAttack` — PGD on ``KL(f(x) ‖ f(x'))`` (Zhang et al., 2019); the criterion sees the
  clean ``x`` and the attack adds ``β·KL(f(x) ‖ f(x'))`` (part ``kl``).

Attacks take gradients with respect to the input only (:func:`rb_crossclass.attacks.pgd`) and run
on the module inside a DDP / ``torch.compile`` wrapper, in the BatchNorm mode ``bn_mode``
('train': batch statistics, updated, as in the classic PGD-AT code; 'eval': running statistics,
as in the TRADES reference).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks import PGDConfig, pgd
from ..core.errors import RBCrossclassError
from ..core.threat import check_eps, parse_eps
from .base import RecipeError

INNER_PARAMS = frozenset({"inner", "eps", "step_size", "steps", "threat_model", "bn_mode", "random_start",
                          "beta"})
BN_MODES = ("train", "eval")


@dataclass
class InnerExamples:
    """``inputs``: what the criterion sees; ``adversarial``: the attack's ``x'`` (``None`` without
    an attack)."""

    inputs: torch.Tensor
    adversarial: torch.Tensor | None = None


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP / ``torch.compile`` wrapper (attacks run on it so that DDP's
    gradient hooks only see the training backward)."""
    inner = getattr(model, "module", None)
    if isinstance(inner, nn.Module) and type(model).__name__ == "DistributedDataParallel":
        model = inner
    return getattr(model, "_orig_mod", model)


@contextmanager
def bn_mode(model: nn.Module, mode: str):
    """Run a block with the model in ``mode`` ('train' or 'eval'), then restore its mode."""
    was = model.training
    model.train(mode == "train")
    try:
        yield
    finally:
        model.train(was)


def kl_per_sample(logits_adv: torch.Tensor, p_clean: torch.Tensor) -> torch.Tensor:
    """``Σ_k p_clean·(log p_clean − log softmax(logits_adv))`` per sample: ``[B,K], [B,K] → [B]``
    (the TRADES reference's ``KLDivLoss(log_softmax(adv), softmax(clean))``)."""
    log_q = F.log_softmax(logits_adv.float(), dim=1)
    return (p_clean * (torch.log(p_clean.clamp_min(1e-12)) - log_q)).sum(1)


class NoAttack:
    """Natural training: the criterion sees the clean batch."""

    kind = "none"

    def examples(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> InnerExamples:
        return InnerExamples(x)

    def regularizer(self, model, logits, examples, y) -> dict[str, torch.Tensor]:
        return {}

    def params(self) -> dict:
        return {"inner": self.kind}


class PGDAttack(NoAttack):
    """PGD on cross-entropy in the ε-ball; the criterion sees ``x'``."""

    kind = "pgd_at"

    def __init__(self, config: PGDConfig, bn_mode: str = "train") -> None:
        if bn_mode not in BN_MODES:
            raise RecipeError(f"bn_mode must be 'train' or 'eval', got {bn_mode!r}")
        self.config, self.bn_mode = config, bn_mode

    def attack(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        net = unwrap(model)
        with bn_mode(net, self.bn_mode):
            return pgd(net, x, y, self.config, return_features=False).x_adv

    def examples(self, model, x, y) -> InnerExamples:
        x_adv = self.attack(model, x, y)
        return InnerExamples(x_adv, x_adv)

    def params(self) -> dict:
        c = self.config
        return {"inner": self.kind, "attack": {"eps": c.eps, "step_size": c.step, "steps": c.steps,
                                               "norm": c.norm, "bn_mode": self.bn_mode,
                                               "random_start": c.random_start}}


class TradesAttack(PGDAttack):
    """PGD on ``KL(f(x) ‖ f(x'))``; the criterion sees ``x`` and ``β·KL(f(x) ‖ f(x'))`` is added."""

    kind = "trades"

    def __init__(self, config: PGDConfig, bn_mode: str = "eval", beta: float = 6.0) -> None:
        super().__init__(config, bn_mode)
        self.beta = float(beta)

    def attack(self, model, x, y) -> torch.Tensor:
        net = unwrap(model)
        with bn_mode(net, self.bn_mode):
            with torch.no_grad():
                p_clean = F.softmax(net(x).float(), dim=1)
            return pgd(net, x, y, self.config, loss_fn=lambda z, _y: kl_per_sample(z, p_clean),
                       return_features=False).x_adv

    def examples(self, model, x, y) -> InnerExamples:
        return InnerExamples(x, self.attack(model, x, y))

    def regularizer(self, model, logits, examples, y) -> dict[str, torch.Tensor]:
        logits_adv = model(examples.adversarial)
        kl = kl_per_sample(logits_adv, F.softmax(logits.float(), dim=1)).mean()
        return {"kl": self.beta * kl}

    def params(self) -> dict:
        return {**super().params(), "beta": self.beta}


def build_inner(kind: str, *, eps: float | str = 8 / 255, step_size: float | str = 2 / 255,
                steps: int = 10, threat_model: str = "Linf", bn_mode: str | None = None,
                random_start: bool = True, beta: float = 6.0, norm: str | None = None) -> NoAttack:
    """The inner attack ``kind`` ('none', 'pgd_at', 'trades') from config values (ε and step as
    ``8/255`` strings or numbers; ``threat_model`` ``Linf`` or ``L2``, ``norm`` its deprecated
    name, with a :class:`DeprecationWarning`). TRADES crafts ``x'`` in eval mode by default, PGD-AT
    in train mode, as their reference codes do. Bad values raise :class:`RecipeError`."""
    if norm is not None:
        import warnings

        warnings.warn("build_inner(norm=...) is deprecated; use threat_model=", DeprecationWarning,
                      stacklevel=2)
        threat_model = norm
    norm = threat_model
    if kind == "none":
        return NoAttack()
    if kind not in ("pgd_at", "trades"):
        raise RecipeError(f"inner must be 'none', 'pgd_at' or 'trades', got {kind!r}")
    try:
        config = PGDConfig(eps=check_eps(parse_eps(eps), norm), steps=steps, step_size=parse_eps(step_size),
                           norm=norm, random_start=bool(random_start))
    except RBCrossclassError as err:
        raise RecipeError(f"inner attack: {err}") from err
    if kind == "trades":
        return TradesAttack(config, bn_mode or "eval", beta)
    return PGDAttack(config, bn_mode or "train")


__all__ = ["INNER_PARAMS", "InnerExamples", "NoAttack", "PGDAttack", "TradesAttack",
           "bn_mode", "build_inner", "kl_per_sample", "unwrap"]
