"""Architectures of four published robust CIFAR-10 models, L∞ ε = 2/255 (weights not included).

Written by us from plain-English descriptions of the published networks
(``../shared/checkpoints/cifar10/README.md``); no code of the original repositories is reproduced.
The weight files are third-party and referenced by path or by their original URL, never copied
into this repository. Every file loads with ``torch.load(..., weights_only=True)``; the weights sit
under the key ``state_dict`` (for the ``*_kw`` files, as the only element of a list), which the
project's checkpoint reader unwraps.

Inputs: CIFAR-10 images ``[B, 3, 32, 32]`` in [0, 1]; each network normalizes inside (a fixed
per-channel mean/std, not part of the state dict); output: logits ``[B, 10]``. In every network the
last operation of ``forward`` is the final ``nn.Linear`` (``linear2`` / index ``7``), so the
logits are ``W · features + b`` with ``features`` its 100-dimensional input (what the cross-class
metric reads).

- ``resnet2b`` / ``resnet4b``: "ResNet-2B" / "ResNet-4B" of the β-CROWN team, PGD adversarial
  training at L∞ 2/255 (Wang et al., "Beta-CROWN: Efficient Bound Propagation with Per-neuron Split
  Constraints for Neural Network Robustness Verification", NeurIPS 2021, arXiv:2103.06624), the
  ``cifar10_resnet`` benchmark of VNN-COMP 2021 (stanleybak/vnncomp2021).
- ``cifar_base_kw`` / ``cifar_wide_kw``: two convolutional networks of the OVAL group trained
  certifiably with the convex outer polytope of Wong & Kolter ("Provable Defenses against
  Adversarial Examples via the Convex Outer Adversarial Polytope", ICML 2018, arXiv:1711.00851),
  L∞ 2/255, the ``oval21`` benchmark of VNN-COMP 2021.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

__all__ = ["ResNetB", "KWConvNet", "resnet2b", "resnet4b", "cifar_base_kw", "cifar_wide_kw"]

CIFAR10_MEAN_BCROWN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD_BCROWN = (0.2471, 0.2435, 0.2616)
CIFAR10_MEAN_OVAL = (0.485, 0.456, 0.406)
CIFAR10_STD_OVAL = (0.225, 0.225, 0.225)


class Standardize(nn.Module):
    """``(x - mean) / std`` per channel; the statistics are fixed buffers outside the state dict."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class BasicBlockNoBN(nn.Module):
    """conv 3×3 (stride s) → ReLU → conv 3×3, plus a shortcut (a 1×1 conv with stride ``s`` when the
    shape changes, else the identity), ReLU after the sum. All convolutions carry a bias."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, stride=1, padding=1)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(torch.relu(self.conv1(x)))
        return torch.relu(out + self.shortcut(x))


class ResNetB(nn.Module):
    """The β-CROWN ResNets without batch norm: conv 3→``width`` (3×3, stride 2) → ReLU → stages of
    two blocks each (the first block of every stage has stride 2) → flatten → ``linear1`` → ReLU →
    ``linear2``.

    ``stages`` lists each stage's output channels: ResNet-2B ``(16,)`` with width 8
    (``[B,8,16,16] → [B,16,8,8]``, 1024 features into ``linear1``), ResNet-4B ``(32, 32)`` with width
    16 (``[B,16,16,16] → [B,32,8,8] → [B,32,4,4]``, 512 features).
    """

    def __init__(self, width: int, stages: tuple[int, ...], flat: int, num_classes: int = 10) -> None:
        super().__init__()
        self.normalize = Standardize(CIFAR10_MEAN_BCROWN, CIFAR10_STD_BCROWN)
        self.conv1 = nn.Conv2d(3, width, 3, stride=2, padding=1)
        in_ch = width
        for i, out_ch in enumerate(stages, start=1):
            setattr(self, f"layer{i}", nn.Sequential(BasicBlockNoBN(in_ch, out_ch, 2),
                                                     BasicBlockNoBN(out_ch, out_ch, 1)))
            in_ch = out_ch
        self.num_stages = len(stages)
        self.linear1 = nn.Linear(flat, 100)
        self.linear2 = nn.Linear(100, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, 32, 32] in [0, 1] → logits [B, num_classes]."""
        out = torch.relu(self.conv1(self.normalize(x)))
        for i in range(1, self.num_stages + 1):
            out = getattr(self, f"layer{i}")(out)
        features = torch.relu(self.linear1(out.flatten(1)))  # [B, 100]
        return self.linear2(features)


class KWConvNet(nn.Sequential):
    """The OVAL networks, a plain stack whose state-dict keys are the published ``0``, ``2``, ``5``,
    ``7``: standardize (no parameters) → conv 3→c1 (4×4, stride 2, pad 1) → ReLU → conv c1→c2 (4×4,
    stride 2, pad 1) → ReLU → flatten (``[B, c2·8·8]``) → linear → 100 → ReLU → linear 100 → 10.
    Input ``[B, 3, 32, 32]`` in [0, 1], output logits ``[B, num_classes]``."""

    def __init__(self, c1: int, c2: int, num_classes: int = 10) -> None:
        super().__init__(OrderedDict([
            ("normalize", Standardize(CIFAR10_MEAN_OVAL, CIFAR10_STD_OVAL)),
            ("0", nn.Conv2d(3, c1, 4, stride=2, padding=1)), ("1", nn.ReLU()),
            ("2", nn.Conv2d(c1, c2, 4, stride=2, padding=1)), ("3", nn.ReLU()),
            ("4", nn.Flatten(1)),
            ("5", nn.Linear(c2 * 8 * 8, 100)), ("6", nn.ReLU()),
            ("7", nn.Linear(100, num_classes)),
        ]))


def resnet2b(num_classes: int = 10) -> ResNetB:
    """ResNet-2B (``resnet2b/model_best.pth``), random weights until a checkpoint is loaded."""
    return ResNetB(8, (16,), 16 * 8 * 8, num_classes)


def resnet4b(num_classes: int = 10) -> ResNetB:
    """ResNet-4B (``resnet4b/model_best.pth``), random weights until a checkpoint is loaded."""
    return ResNetB(16, (32, 32), 32 * 4 * 4, num_classes)


def cifar_base_kw(num_classes: int = 10) -> KWConvNet:
    """OVAL's ``cifar_base_kw`` (conv 8, 16; FC 1024→100→10)."""
    return KWConvNet(8, 16, num_classes)


def cifar_wide_kw(num_classes: int = 10) -> KWConvNet:
    """OVAL's ``cifar_wide_kw`` (conv 16, 32; FC 2048→100→10)."""
    return KWConvNet(16, 32, num_classes)
