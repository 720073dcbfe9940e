"""The :class:`Recipe` contract and its loss record.

A recipe turns a batch ``x: [B,C,H,W]`` in [0,1], ``y: [B]`` into a :class:`LossRecord`: the
scalar ``total`` to back-propagate and its named ``parts`` (``ce``, ``kl``, ``kd`` ...), which the
training loop averages per epoch into ``metrics.jsonl``. A recipe is composed of an inner
maximization (:mod:`.inner`: none, PGD on cross-entropy, or TRADES' KL attack) and one method of
its own, :meth:`Recipe.criterion`: the loss on the logits of the inputs the inner attack selects.
Everything the criterion needs (the student, the clean batch) comes as arguments
(:class:`CriterionInputs`), never through instance attributes.

Mixed precision: the training loop runs ``loss`` under ``torch.autocast``; inner attacks and
teacher forwards inherit it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import RBCrossclassError


class RecipeError(RBCrossclassError, ValueError):
    """A recipe name or parameter is invalid; the message names it and the accepted values."""


@dataclass
class LossRecord:
    """A recipe's loss on one batch: ``total`` (scalar tensor with gradients) and ``parts``
    (named scalar tensors that sum to ``total``)."""

    total: torch.Tensor
    parts: dict[str, torch.Tensor]

    def detached(self) -> dict[str, float]:
        """``{"loss": total, "<part>": value, ...}`` as Python floats (for logging)."""
        return {"loss": float(self.total.detach()), **{k: float(v.detach()) for k, v in self.parts.items()}}


@dataclass
class CriterionInputs:
    """What a criterion may look at besides the logits: the ``model`` being trained (the
    student), the ``inputs`` whose logits it gets and the ``clean`` batch."""

    model: nn.Module
    inputs: torch.Tensor
    clean: torch.Tensor


def check_number(recipe: str, name: str, value: object, low: float, high: float, *,
                 low_open: bool = False, high_open: bool = False) -> float:
    """``float(value)`` when it lies in the interval, else :class:`RecipeError` naming the parameter."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as err:
        raise RecipeError(f"recipe {recipe!r}: {name} must be a number, got {value!r}") from err
    ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise RecipeError(f"recipe {recipe!r}: {name} must be in {lo}{low:g}, {high:g}{hi}, got {value!r}")
    return v


class Recipe:
    """Base class: an inner maximization plus :meth:`criterion`.

    ``loss(model, x, y)`` runs the inner attack, the model on the inputs it selects, the criterion,
    and the inner attack's own regularizer (TRADES' KL). Hooks: :meth:`set_epoch` (epoch start),
    :meth:`after_step` (after each optimizer step), :meth:`prepare` (before training, with the
    model options of the run, e.g. to build a teacher).
    """

    name: ClassVar[str] = "recipe"
    default_inner: ClassVar[str] = "none"  # the inner attack the recipe is built with by default
    inner_kinds: ClassVar[tuple[str, ...]] = ()  # other inner attacks a user may choose (``inner=``)

    def __init__(self, inner) -> None:
        self.inner = inner
        self.epoch = 0

    def criterion(self, logits: torch.Tensor, y: torch.Tensor,
                  ctx: CriterionInputs) -> dict[str, torch.Tensor]:
        """Named loss parts on ``logits [B,K]`` of ``ctx.inputs`` with labels ``y [B]`` (hard-label CE)."""
        return {"ce": F.cross_entropy(logits.float(), y)}

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> LossRecord:
        """The training loss of ``x: [B,C,H,W]`` in [0,1] with labels ``y: [B]``."""
        examples = self.inner.examples(model, x, y)
        logits = model(examples.inputs)
        parts = self.criterion(logits, y, CriterionInputs(model=model, inputs=examples.inputs, clean=x))
        parts.update(self.inner.regularizer(model, logits, examples, y))
        total = sum(parts.values())
        return LossRecord(total=total, parts=parts)

    def prepare(self, model_options) -> None:
        """Called once before training with the run's :class:`~rb_crossclass.models.SourceOptions`."""

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def after_step(self, model: nn.Module) -> None:
        """Called after each optimizer step (EMA teachers update here)."""

    def epoch_info(self) -> dict[str, float]:
        """Per-epoch values worth logging (e.g. a distillation weight schedule)."""
        return {}

    def params(self) -> dict:
        """The recipe's parameters as JSON-able values (recorded in metrics and cards)."""
        return self.inner.params()

    def state_dict(self) -> dict:
        return {"epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.epoch = int(state.get("epoch", 0))
