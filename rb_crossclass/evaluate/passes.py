"""Counting forward and backward passes through a model (the cost of an evaluation)."""

from __future__ import annotations

import torch
from torch import nn


class PassCounter(nn.Module):
    """Wraps a model and counts forward calls/samples and backward calls/samples through it.

    A backward is counted when a gradient reaches the output (one hook per forward with grad).
    Outputs are the wrapped model's, bit for bit.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.reset()

    def reset(self) -> None:
        self.forward_calls = self.forward_samples = self.backward_calls = self.backward_samples = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        n = int(x.shape[0])
        self.forward_calls += 1
        self.forward_samples += n
        if out.requires_grad:
            out.register_hook(lambda g, n=n: self._backward(n))
        return out

    def _backward(self, n: int) -> None:
        self.backward_calls += 1
        self.backward_samples += n

    def counts(self) -> dict[str, int]:
        return {"forward_passes": self.forward_calls, "forward_samples": self.forward_samples,
                "backward_passes": self.backward_calls, "backward_samples": self.backward_samples}


