"""The model pyautoattack attacks: the scorer's exact speed-ups around the user's model.

Bare pyautoattack attacks the model as it is: every attack step also computes gradients of every
parameter, runs each batch norm as its own pass, and on a CPU with oneDNN uses the slower NCHW
convolution kernels. :func:`attack_model` gives pyautoattack a model computing the same function
faster, without changing or copying anything in pyautoattack:

- **frozen parameters**: the parameters of the model pyautoattack sees do not require gradients.
  pyautoattack's APGD already asks ``torch.autograd.grad`` for the input's gradient only, so this
  gains little there (measured: ``benchmarks/bench_autoattack_speed.py``); it keeps any attack
  that calls ``backward()`` from computing weight gradients;
- **folded batch norms** on a checked copy (:func:`~rb_crossclass.models.fold.fold_batch_norms`:
  checked against the model on a probe batch, else not folded);
- **channels_last** where :func:`~rb_crossclass.core.runtime.prefers_channels_last` says it pays:
  the weights are NHWC, the input is converted inside ``forward`` and its gradient converted back,
  so the tensors pyautoattack sees (inputs, gradients, outputs) stay contiguous NCHW (it reshapes
  gradients with ``.view``);
- **the device's batch**: a batch larger than
  :func:`~rb_crossclass.crossclass.compute.default_batch_size` (64 on CPU, where batches of 256
  ran 1.4x slower per image) is computed in chunks of that size; pyautoattack's own batches (which
  fix its random seeds per batch) are untouched.

What changes is float rounding only: folding and NHWC kernels associate sums differently (logits
within ~1e-6 relative of the model's). pyautoattack's decisions (the sign of a gradient
coordinate under L∞, an argmax, a step-size halving) can in principle turn on such a difference,
so per-point robust flags can differ from bare pyautoattack on a point the attack barely fools or
barely misses. Measured in ``benchmarks/bench_autoattack_speed.py`` and the tests (identical flags
on the published MNIST models and a batch-norm network); ``exact=True`` (CLI ``--aa-exact``) hands
pyautoattack the model as it is, as bare pyautoattack does.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import torch
from torch import nn

from ..core.runtime import prefers_channels_last
from ..models.fold import fold_batch_norms

log = logging.getLogger(__name__)

__all__ = ["AttackModel", "AttackModelSettings", "attack_model"]

CPU_CHUNK = 64
"""Largest batch one forward computes on CPU (the scorer's CPU batch; see
:data:`~rb_crossclass.crossclass.compute.CPU_BATCH_SIZE`)."""
FOLD_PROBE = 16
"""Images of the probe batch on which folded batch norms are checked against the model."""


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
    """What :func:`attack_model` did: the record written on the card (``evaluation.attack_model``)."""

    exact: bool
    fold_batch_norms: int
    channels_last: bool
    chunk: int | None
    frozen_parameters: bool

    def as_dict(self) -> dict:
        return {"exact": self.exact, "fold_batch_norms": self.fold_batch_norms,
                "channels_last": self.channels_last, "chunk": self.chunk,
                "frozen_parameters": self.frozen_parameters}


def _frozen(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode whose parameters need no gradient (the model is untouched);
    the model itself when it cannot be copied (then with its flags as they are)."""
    try:
        out = copy.deepcopy(model)
    except Exception as err:  # noqa: BLE001 - a model that cannot be copied is attacked as it is
        log.info("AutoAttack runs on the model itself: it cannot be copied (%s)", err)
        return model
    for p in out.parameters():
        p.requires_grad_(False)
    return out.eval()


def attack_model(model: nn.Module, x: torch.Tensor, device: torch.device | str, *,
                 exact: bool = False) -> tuple[nn.Module, AttackModelSettings]:
    """``(the model pyautoattack should attack, what was done)`` for eval-mode ``model`` on
    ``device``, ``x: [N,C,H,W]`` in [0,1] (its first :data:`FOLD_PROBE` rows check the folding).

    ``exact=True`` yields ``model`` itself (bare pyautoattack's arithmetic). Otherwise a copy with
    parameters frozen, batch norms folded where checked, channels_last by
    :func:`~rb_crossclass.core.runtime.prefers_channels_last` and forwards chunked to the device's
    batch (see the module docstring); ``model`` itself is never modified.
    """
    device = torch.device(device)
    if exact:
        return model, AttackModelSettings(True, 0, False, None, False)
    inner = _frozen(model)
    frozen = inner is not model
    folded = 0
    if frozen and x.dim() == 4:
        probe = x[:FOLD_PROBE].to(device)
        inner, folded = fold_batch_norms(inner, probe)
    channels_last = frozen and x.dim() == 4 and prefers_channels_last(inner, device)
    if channels_last:
        inner = inner.to(memory_format=torch.channels_last)
    chunk = CPU_CHUNK if device.type == "cpu" else None
    return (AttackModel(inner, channels_last, chunk),
            AttackModelSettings(False, folded, channels_last, chunk, frozen))
