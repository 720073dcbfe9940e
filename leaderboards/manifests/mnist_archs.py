"""Architectures of three published adversarially trained MNIST models (weights not included).

Written from plain-English descriptions of the published models; no code of the original
repositories is reproduced here. The weight files are third-party and are referenced by path,
never copied into this repository. Each file is a plain ``OrderedDict`` state dict (legacy,
non-zip ``torch.save`` format, float32, CPU tensors, no key prefix, no extra entries) that
loads with ``torch.load(path, map_location="cpu", weights_only=True)`` followed by
``load_state_dict(..., strict=True)`` into the module built here.

Models (inputs: [B, 1, 28, 28] float images in [0, 1], no normalization; output: logits [B, 10];
threat model L∞, ε = 0.3):

- ``advertorch_lenet5`` — for both

  * ``advertorch_examples/trained_models/mnist_lenet5_advtrained.pt`` (PGD adversarial training,
    ε 0.3, 40 iterations, step 0.01, random init, Adam lr 1e-4, 90 epochs) and
  * ``advertorch_examples/trained_models/mnist_lenet5_clntrained.pt`` (clean training, 10 epochs;
    a non-robust control),

  from BorealisAI/advertorch @ e063e341c87d9a621ae1a8f72c3507d5ea5bd327, licence LGPL-3.0.
  Paper: Ding, Wang & Jin, "advertorch v0.1: An Adversarial Robustness Toolbox based on
  PyTorch", arXiv:1902.07623.

- ``fast_adversarial_mnist`` — for ``MNIST/models/pgd_madry.pth`` from
  locuslab/fast_adversarial @ 54f728755e71857b632882ba6d6cef22f56e2172, no licence stated in the
  repository. PGD-40 adversarial training with Madry et al.'s MNIST settings (ε 0.3, step 0.01,
  lr 1e-4, 100 epochs, batch 50). Paper: Wong, Rice & Kolter, "Fast is better than free:
  Revisiting adversarial training", ICLR 2020, arXiv:2001.03994; the recipe follows Madry et al.,
  "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR 2018, arXiv:1706.06083.

In both modules the last operation of ``forward`` is the final ``nn.Linear``, so logits are
``W · features + b`` with ``features`` the input of that layer (what the cross-class metric reads).

Use with the project's model source, e.g.
``py:leaderboards/manifests/mnist_archs.py:advertorch_lenet5`` with ``checkpoint=PATH``, or
directly: ``advertorch_lenet5(checkpoint=PATH)``.
"""

from __future__ import annotations

import os

import torch
from torch import nn

__all__ = ["AdvertorchLeNet5", "FastAdversarialMNIST", "advertorch_lenet5", "fast_adversarial_mnist",
           "load_checkpoint"]


class AdvertorchLeNet5(nn.Module):
    """advertorch's test-utility "LeNet5" for MNIST.

    conv1 1→32 (3×3, pad 1) → ReLU → max-pool 2×2 → conv2 32→64 (3×3, pad 1) → ReLU → max-pool 2×2
    → flatten (C, H, W order) → linear1 3136→200 → ReLU → linear2 200→10.

    State-dict keys: ``conv1.*``, ``conv2.*``, ``linear1.*``, ``linear2.*`` (weight and bias each).
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3, padding=1)
        self.relu1 = nn.ReLU()
        self.maxpool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.relu2 = nn.ReLU()
        self.maxpool2 = nn.MaxPool2d(2)
        self.linear1 = nn.Linear(64 * 7 * 7, 200)
        self.relu3 = nn.ReLU()
        self.linear2 = nn.Linear(200, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 1, 28, 28] in [0, 1] → logits [B, num_classes]."""
        x = self.maxpool1(self.relu1(self.conv1(x)))  # [B, 32, 14, 14]
        x = self.maxpool2(self.relu2(self.conv2(x)))  # [B, 64, 7, 7]
        x = x.flatten(1)  # [B, 3136]
        x = self.relu3(self.linear1(x))  # [B, 200]: the features
        return self.linear2(x)  # [B, num_classes]


class FastAdversarialMNIST(nn.Sequential):
    """fast_adversarial's MNIST network, a plain sequential stack.

    index 0 conv 1→16 (4×4, stride 2, pad 1) → 1 ReLU → 2 conv 16→32 (4×4, stride 2, pad 1) → 3 ReLU
    → 4 flatten (C, H, W order) → 5 linear 1568→100 → 6 ReLU → 7 linear 100→10.

    State-dict keys: ``0.*``, ``2.*``, ``5.*``, ``7.*`` (weight and bias each).
    Shapes: [B, 1, 28, 28] → [B, 16, 14, 14] → [B, 32, 7, 7] → [B, 1568] → [B, 100] → [B, 10].
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__(
            nn.Conv2d(1, 16, kernel_size=4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=4, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(1),
            nn.Linear(32 * 7 * 7, 100),
            nn.ReLU(),
            nn.Linear(100, num_classes),
        )


def load_checkpoint(model: nn.Module, checkpoint: str | os.PathLike) -> nn.Module:
    """Load a plain state-dict file into ``model`` (``weights_only``, strict); returns it in eval mode."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()


def advertorch_lenet5(num_classes: int = 10, checkpoint: str | os.PathLike | None = None) -> AdvertorchLeNet5:
    """advertorch's MNIST LeNet5 (for ``mnist_lenet5_advtrained.pt`` and ``mnist_lenet5_clntrained.pt``).

    Takes [B, 1, 28, 28] in [0, 1] and returns logits [B, num_classes]; with ``checkpoint`` the
    weights are loaded (strict) and the model is put in eval mode.
    """
    model = AdvertorchLeNet5(num_classes)
    return load_checkpoint(model, checkpoint) if checkpoint is not None else model


def fast_adversarial_mnist(num_classes: int = 10,
                           checkpoint: str | os.PathLike | None = None) -> FastAdversarialMNIST:
    """fast_adversarial's MNIST network (for ``MNIST/models/pgd_madry.pth``).

    Takes [B, 1, 28, 28] in [0, 1] and returns logits [B, num_classes]; with ``checkpoint`` the
    weights are loaded (strict) and the model is put in eval mode.
    """
    model = FastAdversarialMNIST(num_classes)
    return load_checkpoint(model, checkpoint) if checkpoint is not None else model
