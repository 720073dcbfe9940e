"""The model pyautoattack attacks: the scorer's exact speed-ups around the user's model.

Bare pyautoattack attacks the model as it is: each batch norm runs as its own pass and, on a CPU
with oneDNN, the convolutions use the slower NCHW kernels. :func:`attack_model` gives pyautoattack
a model computing the same function faster, without changing or copying anything in pyautoattack:

- **frozen parameters**: the parameters of the model pyautoattack sees do not require gradients.
  pyautoattack's APGD already asks ``torch.autograd.grad`` for the input's gradient only, so this
  gains little there (measured: ``benchmarks/bench_autoattack_speed.py``); it keeps any attack
  that calls ``backward()`` from computing weight gradients;
- **folded batch norms** (:func:`~rb_crossclass.models.fold.fold_batch_norms`: a copy, checked
  against the model on a probe batch, else not folded);
- **channels_last** where :func:`~rb_crossclass.core.runtime.prefers_channels_last` says it pays:
  the weights are NHWC, the input is converted inside ``forward`` and its gradient converted back,
  so the tensors pyautoattack sees (inputs, gradients, outputs) stay contiguous NCHW (it reshapes
  gradients with ``.view``);
- **the scorer's CPU batch**: on CPU a batch larger than
  :data:`~rb_crossclass.crossclass.compute.CPU_BATCH_SIZE` is computed in chunks of that size;
  pyautoattack's own batches (which fix its random seeds per batch) are untouched.

What changes is float rounding only: folding and NHWC kernels associate sums differently (logits
within ~1e-6 relative of the model's). pyautoattack's decisions (the sign of a gradient
coordinate under L∞, an argmax, a step-size halving) can turn on such a difference, so an
attack's path, its adversarial examples and in principle a per-point robust flag can differ from
bare pyautoattack's. Flags measured identical in ``benchmarks/bench_autoattack_speed.py`` and the
tests (a published MNIST model and a trained batch-norm network); ``exact=True`` (CLI
``--aa-exact``) hands pyautoattack the model as it is, as bare pyautoattack does.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import torch
from torch import nn

from ..core.runtime import prefers_channels_last
from ..crossclass.compute import CPU_BATCH_SIZE, FOLD_PROBE
from ..models.fold import fold_batch_norms

log = logging.getLogger(__name__)

__all__ = ["AttackModel", "AttackModelSettings", "attack_model"]

class _ChannelsLastInput(torch.autograd.Function):
    """``x`` in channels_last for the convolutions; its gradient back in contiguous NCHW."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return x.contiguous(memory_format=torch.channels_last)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return grad.contiguous()


class AttackModel(nn.Module):
    """``inner`` (the model or its folded copy) with NHWC inside and chunked batches.

    ``forward(x: [B,C,H,W])`` returns ``inner``'s logits ``[B,K]`` (contiguous); the gradient that
    reaches ``x`` is contiguous NCHW. ``chunk`` caps the rows of one inner forward (``None``: no cap).
    """

    def __init__(self, inner: nn.Module, channels_last: bool, chunk: int | None) -> None:
        super().__init__()
        self.inner = inner
        self.channels_last = channels_last
        self.chunk = chunk
        num_classes = getattr(inner, "num_classes", None)
        if num_classes is not None:
            self.num_classes = num_classes

    def _one(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            x = _ChannelsLastInput.apply(x)
        return self.inner(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if self.chunk is None or x.shape[0] <= self.chunk:
            return self._one(x).contiguous()
        return torch.cat([self._one(part) for part in x.split(self.chunk)]).contiguous()


@dataclass(frozen=True)
class AttackModelSettings:
    """What :func:`attack_model` did: the record written on the card
    (``evaluation.cost.autoattack_model``)."""

    exact: bool
    fold_batch_norms: int
    channels_last: bool
    chunk: int | None
    frozen_parameters: bool

    def as_dict(self) -> dict:
        return {"exact": self.exact, "fold_batch_norms": self.fold_batch_norms,
                "channels_last": self.channels_last, "chunk": self.chunk,
                "frozen_parameters": self.frozen_parameters}


def _copy(model: nn.Module) -> nn.Module | None:
    """A copy of ``model``, or ``None`` when it cannot be copied."""
    try:
        return copy.deepcopy(model)
    except Exception as err:  # noqa: BLE001 - a model that cannot be copied is attacked as it is
        log.info("AutoAttack runs on the model itself: it cannot be copied (%s)", err)
        return None


def attack_model(model: nn.Module, x: torch.Tensor, device: torch.device | str, *,
                 exact: bool = False) -> tuple[nn.Module, AttackModelSettings]:
    """``(the model pyautoattack should attack, what was done)`` for eval-mode ``model`` on
    ``device``, ``x: [N,C,H,W]`` in [0,1] (its first :data:`FOLD_PROBE` rows check the folding).

    ``exact=True`` yields ``model`` itself (bare pyautoattack's arithmetic). Otherwise a copy with
    parameters frozen, batch norms folded where checked, channels_last by
    :func:`~rb_crossclass.core.runtime.prefers_channels_last` and CPU forwards chunked to the
    scorer's CPU batch (see the module docstring); ``model`` itself is never modified. A model
    that cannot be copied is attacked as it is (only chunked).
    """
    device = torch.device(device)
    if exact:
        return model, AttackModelSettings(True, 0, False, None, False)
    chunk = CPU_BATCH_SIZE if device.type == "cpu" else None
    inner, folded = fold_batch_norms(model, x[:FOLD_PROBE].to(device)) if x.dim() == 4 else (model, 0)
    if inner is model:  # nothing folded: the copy is still ours to freeze
        inner = _copy(model)
        if inner is None:
            return AttackModel(model, False, chunk), AttackModelSettings(False, 0, False, chunk, False)
    for p in inner.parameters():
        p.requires_grad_(False)
    inner.eval()
    channels_last = x.dim() == 4 and prefers_channels_last(inner, device)
    if channels_last:
        inner = inner.to(memory_format=torch.channels_last)
    return (AttackModel(inner, channels_last, chunk),
            AttackModelSettings(False, folded, channels_last, chunk, True))
