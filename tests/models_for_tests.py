"""Tiny models loaded by CLI tests through ``--model py:tests/models_for_tests.py:<callable>``."""

from __future__ import annotations

import torch
from torch import nn


def tiny_mnist_convnet(num_classes: int = 10) -> nn.Module:
    """A seeded small CNN for 1-channel 28×28 images in [0,1] with a final linear head."""
    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(16, num_classes),
    )
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return net


def tiny_mnist_mlp(num_classes: int = 10) -> nn.Module:
    """A small MLP for 1×28×28 images in [0,1] with a final linear head (weights from a checkpoint)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, num_classes))


def tiny_mnist_conv_head(num_classes: int = 10) -> nn.Module:
    """A small CNN whose logits come from a 1×1 convolution on pooled features: no nn.Linear, so
    the cross-class metric does not apply to it."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Conv2d(8, num_classes, 1), nn.Flatten(),
    )


def logged_mnist_convnet(num_classes: int = 10, log: str | None = None, wait_for: str | None = None,
                         wait_seconds: float = 120.0) -> nn.Module:
    """``tiny_mnist_convnet`` that appends a line to ``log`` each time it is built and, when
    ``wait_for`` names a file that does not exist yet, waits for it (up to ``wait_seconds``):
    a model to kill a sweep in the middle of."""
    import time
    from pathlib import Path

    if log is not None:
        with open(log, "a", encoding="utf-8") as f:
            f.write("built\n")
    deadline = time.monotonic() + wait_seconds
    while wait_for is not None and not Path(wait_for).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return tiny_mnist_convnet(num_classes)


class _UnusedLinearAfterHead(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.body = tiny_mnist_convnet(num_classes)[:-1]
        self.fc = nn.Linear(16, num_classes)
        self.aux = nn.Linear(16, num_classes)  # registered after the head, never called

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))


def mnist_unused_linear_after_head(num_classes: int = 10) -> nn.Module:
    """The handed case of issue 19 (round 3): an unused nn.Linear registered after the real head."""
    torch.manual_seed(0)
    return _UnusedLinearAfterHead(num_classes)


class _LinearOnTokens(nn.Module):
    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).flatten(2).transpose(1, 2)).mean(1)


def mnist_linear_on_tokens(num_classes: int = 10) -> nn.Module:
    """No nn.Linear outputs the logits (a Linear per token, then a mean): not applicable."""
    torch.manual_seed(0)
    return _LinearOnTokens(num_classes)
