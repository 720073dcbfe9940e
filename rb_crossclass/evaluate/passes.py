"""Counting forward and backward passes through a model (the cost of an evaluation).

One tally (:class:`PassTally`) and two ways to attach it: :class:`PassCounter` wraps a module (the
AutoAttack driver attacks the wrapper), :func:`count_passes` hooks a
:class:`~rb_crossclass.models.FeatureClassifier` where every forward enters it (a sweep counts
whoever calls the model: AutoAttack, PGD, the scorer). Both report the same four counts
(:data:`PASS_KEYS`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

PASS_KEYS: tuple[str, ...] = ("forward_passes", "forward_samples", "backward_passes", "backward_samples")


class PassTally:
    """Forward and backward calls/samples. A backward is counted when a gradient reaches a counted
    output (one hook per forward with grad)."""

    def __init__(self) -> None:
        self.live: dict[str, int] = dict.fromkeys(PASS_KEYS, 0)  # updated in place as passes happen

    def reset(self) -> None:
        self.live.update(dict.fromkeys(PASS_KEYS, 0))

    def record(self, out: torch.Tensor, n: int) -> None:
        """Count one forward of ``n`` samples whose output is ``out`` ([n, ...]); when ``out``
        requires grad, its backward is counted as it happens."""
        self.live["forward_passes"] += 1
        self.live["forward_samples"] += n
        if out.requires_grad:
            out.register_hook(lambda g, n=n: self._backward(n))

    def _backward(self, n: int) -> None:
        self.live["backward_passes"] += 1
        self.live["backward_samples"] += n

    def counts(self) -> dict[str, int]:
        """A copy of the four counts under :data:`PASS_KEYS`."""
        return dict(self.live)


class PassCounter(nn.Module):
    """Wraps a model and counts forward calls/samples and backward calls/samples through it.

    A backward is counted when a gradient reaches the output (one hook per forward with grad).
    Outputs are the wrapped model's, bit for bit.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.tally = PassTally()

    def reset(self) -> None:
        self.tally.reset()

    @property
    def forward_calls(self) -> int:
        return self.tally.live["forward_passes"]

    @property
    def forward_samples(self) -> int:
        return self.tally.live["forward_samples"]

    @property
    def backward_calls(self) -> int:
        return self.tally.live["backward_passes"]

    @property
    def backward_samples(self) -> int:
        return self.tally.live["backward_samples"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: [B, ...] → the wrapped model's output, counted as one forward of B samples."""
        out = self.model(x)
        self.tally.record(out, int(x.shape[0]))
        return out

    def counts(self) -> dict[str, int]:
        return self.tally.counts()


@contextlib.contextmanager
def count_passes(model: nn.Module) -> Iterator[dict[str, int]]:
    """Count forward and backward passes (calls and samples) through a FeatureClassifier while
    active, whoever calls it (AutoAttack, PGD, the scorer). Counted where every forward enters the
    model, at its input normalization (``model.normalize``); outputs are unchanged. The yielded
    dict (keys :data:`PASS_KEYS`) holds the counts as they happen."""
    tally = PassTally()

    def forward(module, inputs, output):
        if output.requires_grad:
            output = output.view_as(output)  # a fresh node: the hook fires once per backward
            tally.record(output, int(output.shape[0]))
            return output
        tally.record(output, int(output.shape[0]))
        return None

    handle = model.normalize.register_forward_hook(forward)
    try:
        yield tally.live
    finally:
        handle.remove()
