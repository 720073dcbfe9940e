"""The paper's algorithm for CAS, kept as the slow reference for cross-checks.

Wei, Guo & Wang (ICML 2025) compute the class attribution vectors class by class, as typical
research code does: for each class ``i``, batches of exactly ``class_batch`` (100 in the paper)
of its test points, so ``class_batch·⌊n_i/class_batch⌋`` points per class (the remainder is
dropped); untargeted ℓ∞ PGD (random start, step ``step``, cross-entropy averaged over the batch)
whose backward is ``loss.backward()`` with the parameters requiring gradients (parameter
gradients are computed and thrown away); the features of the final iterate recomputed by a
separate forward; everything in float32 and the model's own memory format (NCHW).

:func:`rb_crossclass.crossclass.score_model` computes the same quantity faster (input-only
gradients, mixed-class batches, the last PGD forward's features reused, float64 sums, every
point used). This module exists so that tests and ``benchmarks/bench_crossclass.py`` compare the
scorer with one independent implementation; nothing in the package's pipeline calls it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..core.threat import PAPER_PGD_STEPS
from .metric import attribution_matrix, cas

__all__ = ["ReferenceResult", "reference_cas", "reference_pgd"]


@dataclass
class ReferenceResult:
    """CAS of the paper's algorithm: ``matrix [K,K]`` float64 (NaN rows/columns for classes with
    fewer than ``class_batch`` points), class attribution ``vectors [K,D]`` (zero rows for those
    classes) and the ``n_used`` points that entered them."""

    cas: float
    matrix: torch.Tensor
    vectors: torch.Tensor
    n_used: int


def reference_pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, steps: int,
                  step: float, generator: torch.Generator | None = None,
                  random_start: bool = True) -> torch.Tensor:
    """ℓ∞ PGD as in typical research code, on ``x: [B,C,H,W]`` in [0,1] with labels ``y: [B]``:
    ``x_adv = clip(x + U(-ε, ε))``, then ``steps`` times ``loss = CE(model(x_adv), y)`` (batch
    mean), ``model.zero_grad(); loss.backward()``, ``x_adv += step·sign(∇x)``, projected to the
    ε-ball and [0,1]. Parameter gradients are filled as a side effect (that is the point of the
    reference); returns ``x_adv [B,C,H,W]``."""
    if random_start:
        noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x_adv = (x + (noise * 2 - 1) * eps).clamp(0, 1)
    else:
        x_adv = x.clone()
    for _ in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y)
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            x_adv = x_adv + step * x_adv.grad.sign()
            x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    return x_adv.detach()


@contextlib.contextmanager
def _paper_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode with every parameter requiring grad, as the paper's code runs; the modes, flags
    and gradients the model had are restored afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    params = [(p, p.requires_grad, p.grad) for p in model.parameters()]
    model.eval()
    for p, _, _ in params:
        p.requires_grad_(True)
        p.grad = None
    try:
        yield
    finally:
        for p, flag, grad in params:
            p.grad = grad
            p.requires_grad_(flag)
        for m, mode in modes:
            m.training = mode


def reference_cas(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float = 8 / 255,
                  steps: int = PAPER_PGD_STEPS, step: float | None = None, class_batch: int = 100,
                  seed: int = 0,
                  x_adv: torch.Tensor | None = None) -> ReferenceResult:
    """CAS of ``model`` (a FeatureClassifier: ``features`` and ``head``) by the paper's algorithm.

    ``x: [N,C,H,W]`` in [0,1] and ``y: [N]`` on the model's device; ``step`` defaults to ε/4.
    The random starts come from one generator seeded with ``seed``, drawn class by class. With
    ``x_adv`` (``[N,C,H,W]``, the adversarial example of each ``x[n]``) no attack runs and those
    examples are scored, so the scorer and the reference can be fed the same examples.
    """
    if class_batch < 1:
        raise ValueError(f"class_batch must be >= 1, got {class_batch}")
    step = eps / 4 if step is None else step
    weight = model.head.weight.detach()
    k, d = weight.shape
    generator = torch.Generator(device=x.device).manual_seed(int(seed))
    vectors = torch.zeros(k, d, dtype=weight.dtype, device=weight.device)  # zero row: no class vector
    used = 0
    with _paper_mode(model):
        for i in range(k):
            members = torch.nonzero(y == i).flatten()
            n_i = class_batch * (len(members) // class_batch)
            total = torch.zeros(d, dtype=weight.dtype, device=weight.device)
            for s in range(0, n_i, class_batch):
                sel = members[s:s + class_batch]
                if x_adv is None:
                    xa = reference_pgd(model, x[sel], y[sel], eps=eps, steps=steps, step=step,
                                       generator=generator)
                else:
                    xa = x_adv[sel]
                with torch.no_grad():
                    feats = model.features(xa)  # a separate forward after the attack
                total += (feats * weight[i]).sum(0)
            if n_i:
                vectors[i] = total / n_i
            used += n_i
    matrix = attribution_matrix(vectors)
    return ReferenceResult(cas=cas(matrix), matrix=matrix, vectors=vectors, n_used=used)
