"""The cross-class Gaussian model (after Wei, Guo & Wang, ICML 2025) and its two-weight theory.

Data: ``K >= 3`` classes, ``x = (x_E, x_C) ∈ R^{2K}``. For a sample of class ``y``:

- exclusive features ``x_E[y] ~ N(μ, σ²)``, ``x_E[j] = 0`` for ``j ≠ y``;
- cross-class features ``x_C[l] ~ N(μ, σ²)`` for every ``l ≠ y``, ``x_C[y] = 0`` — feature ``l``
  is shared by every class except ``l``.

Two-weight linear classifier: ``f_k(x) = w1·x_E[k] + w2·Σ_{l≠k} x_C[l]``, i.e. the weight matrix
``W[k] = (w1·e_k, w2·(1 − e_k))``. For a class-``y`` sample the margin against ``k`` is
``m_k = f_y − f_k = w1·x_E[y] + w2·x_C[k]``: every margin shares the exclusive feature but
each uses its own cross-class feature.

Objective (a modelling choice; the paper's exact equation is not confirmed). ℓ∞ threat of
radius ε, L2 penalty ``(λ/2)‖w‖²``, and the soft-label margin loss

    L_α(x) = −(1−α)·min_{k≠y} m_k(x) − α·mean_{k≠y} m_k(x),

``α = 0``: the hard (Carlini–Wagner style, worst-class) margin; ``α > 0``: a soft target that puts
mass α on the average wrong class instead of only the worst one. Its robust optimum
(:func:`closed_form`, derived in docs/theory/README.md) is

    w1* = max(0, μ − 2ε)/λ,   w2* = max(0, μ − (1−α)·σ·e_{K−1} − 2ε)/λ,

with ``e_n = E[max of n standard normals]`` (``1/√π`` for K = 3), so the cross-class weight
vanishes above ``ε_α = (μ − (1−α)σ e_{K−1})/2 < μ/2`` and ``ε_α`` grows with α. For α = 0 and
K = 3 this is the derivation quoted in THEORY.md. :func:`solve_numerically` checks it without
using it: Monte Carlo samples, the exact inner maximisation of the piecewise-linear loss over
the ℓ∞ ball for the full ``K×2K`` weight matrix, and gradient descent on (w1, w2).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

from .gaussian_math import expected_max_std_normal, min_density, normal_cdf


@dataclass(frozen=True)
class CrossClassGaussian:
    """Parameters of the data model: ``num_classes`` K ≥ 3, feature mean ``mu``, std ``sigma``."""

    num_classes: int = 3
    mu: float = 1.0
    sigma: float = 0.4

    def __post_init__(self) -> None:
        if self.num_classes < 3:
            raise ValueError(f"the cross-class model needs K >= 3 classes, got {self.num_classes}")
        if self.mu <= 0 or self.sigma <= 0:
            raise ValueError("mu and sigma must be positive")

    @property
    def dim(self) -> int:
        """Input dimension ``2K``: exclusive features first, then cross-class features."""
        return 2 * self.num_classes

    def sample(self, n: int, generator: torch.Generator | None = None,
               balanced: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` samples: ``x: [n, 2K]`` float32, ``y: [n]`` int64 (classes cycle when balanced,
        else uniform). Deterministic given ``generator``."""
        k = self.num_classes
        if balanced:
            y = torch.arange(n) % k
        else:
            y = torch.randint(0, k, (n,), generator=generator)
        values = self.mu + self.sigma * torch.randn(n, 2 * k, generator=generator)
        onehot = torch.nn.functional.one_hot(y, k).float()
        mask = torch.cat([onehot, 1 - onehot], dim=1)
        return (values * mask).float(), y

    def weight_matrix(self, w1: float | torch.Tensor, w2: float | torch.Tensor) -> torch.Tensor:
        """``W: [K, 2K]`` of the two-weight classifier (differentiable in w1, w2 when tensors)."""
        k = self.num_classes
        eye = torch.eye(k, dtype=torch.float64)
        w1 = torch.as_tensor(w1, dtype=torch.float64)
        w2 = torch.as_tensor(w2, dtype=torch.float64)
        return torch.cat([w1 * eye, w2 * (1 - eye)], dim=1)

    def e_max(self) -> float:
        """``e_{K−1}``: expected maximum of K−1 standard normals."""
        return expected_max_std_normal(self.num_classes - 1)


# --------------------------------------------------------------------------- closed form
def threshold(model: CrossClassGaussian, alpha: float = 0.0) -> float:
    """``ε_α = (μ − (1−α)σ e_{K−1})/2``: above it the robust optimum drops the cross-class weight."""
    return (model.mu - (1 - alpha) * model.sigma * model.e_max()) / 2


def eps_grid(model: CrossClassGaussian, points: int = 21) -> list[float]:
    """``points`` evenly spaced ε from 0 to ``μ/2`` (where the exclusive weight vanishes too)."""
    return [round(i * model.mu / (2 * (points - 1)), 6) for i in range(points)]


def closed_form(model: CrossClassGaussian, eps: float, alpha: float = 0.0,
                lam: float = 1.0) -> tuple[float, float]:
    """Robust optimum ``(w1*, w2*)`` of the soft-label margin objective (module docstring)."""
    w1 = max(0.0, model.mu - 2 * eps) / lam
    w2 = max(0.0, model.mu - (1 - alpha) * model.sigma * model.e_max() - 2 * eps) / lam
    return w1, w2


# --------------------------------------------------------------------------- numerical check
def robust_margin_loss(model: CrossClassGaussian, x: torch.Tensor, y: torch.Tensor,
                       w: torch.Tensor, eps: torch.Tensor, alpha: float) -> torch.Tensor:
    """Mean over samples of ``max_{‖δ‖∞≤ε} L_α(x+δ)`` for each row of ``w: [E,2]`` / ``eps: [E]``.

    ``L_α = max_k [−(1−α) m_k − α m̄]`` is a maximum of linear functions of x, so its ℓ∞ worst
    case is ``max_k [value_k(x) + ε‖∇_x value_k‖₁]`` — computed here from the full weight matrix,
    independently of the closed form. ``x: [N,2K]``, ``y: [N]`` → ``[E]``.
    """
    k = model.num_classes
    eye = torch.eye(k, dtype=x.dtype, device=x.device)
    weights = torch.cat([w[:, :1, None] * eye, w[:, 1:, None] * (1 - eye)], dim=2)  # [E,K,2K]
    grads = weights[:, :, None, :] - weights[:, None, :, :]               # [E,Y,K,2K] = W[y]−W[k]
    wrong_table = 1 - eye                                                  # [Y,K]
    mean_g = (grads * wrong_table[None, :, :, None]).sum(2, keepdim=True) / (k - 1)
    slope_table = ((1 - alpha) * grads + alpha * mean_g).abs().sum(3)     # [E,Y,K]
    total = torch.zeros(len(w), dtype=x.dtype, device=x.device)
    for c in range(k):  # per true class: the slope depends on (y, k) only
        xc = x[y == c]
        if len(xc) == 0:
            continue
        logits = torch.einsum("ekd,nd->enk", weights, xc)                  # [E,Nc,K]
        margins = logits[:, :, c:c + 1] - logits                           # 0 at k = c
        wrong = wrong_table[c]                                             # [K]
        mean_m = (margins * wrong).sum(2, keepdim=True) / (k - 1)
        value = -(1 - alpha) * margins - alpha * mean_m
        worst = value + eps.view(-1, 1, 1) * slope_table[:, c, None, :]
        worst = worst.masked_fill(wrong == 0, -math.inf)
        total = total + worst.max(2).values.sum(1)
    return total / len(x)


def solve_numerically(model: CrossClassGaussian, eps_grid: list[float], alpha: float = 0.0,
                      lam: float = 1.0, n_samples: int = 6000, steps: int = 400,
                      seed: int = 0, progress: bool = False) -> torch.Tensor:
    """``[E,2]`` robust optimum ``(w1, w2)`` per ε by Adam on the Monte Carlo objective
    ``E[max_δ L_α] + (λ/2)‖w‖²`` (convex in w), all ε at once; w is unconstrained.
    ``progress`` shows a bar over the Adam steps."""
    from ..core.progress import progress_bar

    g = torch.Generator().manual_seed(seed)
    x, y = model.sample(n_samples, g)
    x = x.double()
    eps = torch.tensor(eps_grid, dtype=torch.float64)
    w = torch.full((len(eps_grid), 2), 0.5 / lam, dtype=torch.float64, requires_grad=True)
    lr0 = 0.05 * max(model.mu, 1.0) / lam
    opt = torch.optim.Adam([w], lr=lr0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr0 * 1e-3)
    for _ in progress_bar(range(steps), desc=f"theory optimum (alpha={alpha:g})", unit="step",
                          disable=not progress, leave=False):
        opt.zero_grad()
        objective = robust_margin_loss(model, x, y, w, eps, alpha) + 0.5 * lam * (w * w).sum(1)
        objective.sum().backward()
        opt.step()
        sched.step()
    return w.detach()


# --------------------------------------------------------------------------- robust accuracy
def robust_accuracy(model: CrossClassGaussian, w1: float, w2: float, eps: float) -> float:
    """Exact ℓ∞ robust accuracy of the two-weight classifier (``w1 > 0``, ``w2 >= 0``).

    Correct under attack iff ``w1 x_E[y] + w2 min_k x_C[k] > 2ε(w1 + w2)`` (one δ lowers every
    margin by its ℓ1 gradient norm ``2(w1+w2)``); integrates over the minimum's density."""
    if w1 <= 0 or w2 < 0:
        raise ValueError("robust_accuracy expects w1 > 0 and w2 >= 0")
    from .gaussian_math import _GRID

    u = _GRID
    c_min = model.mu + model.sigma * u
    t = 2 * eps * (w1 + w2)
    inner = normal_cdf((w1 * model.mu + w2 * c_min - t) / (w1 * model.sigma))
    return float(torch.trapezoid(inner * min_density(model.num_classes - 1, u), u))


def empirical_robust_accuracy(model: CrossClassGaussian, w1: float, w2: float, eps: float,
                              x: torch.Tensor, y: torch.Tensor) -> float:
    """Robust accuracy on samples ``x: [N,2K]`` with the exact ℓ∞ worst case per margin."""
    weights = model.weight_matrix(w1, w2).to(x.dtype)
    logits = x @ weights.T
    margins = logits.gather(1, y[:, None]) - logits
    grads = weights[y][:, None, :] - weights[None, :, :]
    worst = margins - eps * grads.abs().sum(2)
    worst = worst.scatter(1, y[:, None], math.inf)
    return float((worst.min(1).values > 0).double().mean())


# --------------------------------------------------------------------------- sweep
@dataclass
class LinearTheoryResult:
    """Closed-form and numerical robust optima over an ε grid, hard vs soft labels."""

    model: dict
    lam: float
    alpha: float
    eps: list[float]
    eps0: float
    eps_alpha: float
    e_max: float
    closed_hard: list[list[float]]
    closed_soft: list[list[float]]
    numeric_hard: list[list[float]]
    numeric_soft: list[list[float]]
    max_abs_error: float
    accuracy_w2: list[float] = field(default_factory=list)
    accuracy_eps: list[float] = field(default_factory=list)
    accuracy: list[list[float]] = field(default_factory=list)
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def sweep(model: CrossClassGaussian, eps_grid: list[float], alpha: float = 0.4, lam: float = 1.0,
          seed: int = 0, n_samples: int = 6000, steps: int = 400,
          accuracy_eps: tuple[float, ...] = (0.0, 0.05, 0.1), progress: bool = False) -> LinearTheoryResult:
    """Solve the hard (α = 0) and soft (α) objectives in closed form and numerically on
    ``eps_grid``; also the exact robust accuracy as w2 goes from 0 to w1 (w1 = 1) at a few ε.
    ``progress`` shows a bar per numerical solve."""
    closed_h = [list(closed_form(model, e, 0.0, lam)) for e in eps_grid]
    closed_s = [list(closed_form(model, e, alpha, lam)) for e in eps_grid]
    num_h = solve_numerically(model, eps_grid, 0.0, lam, n_samples, steps, seed, progress)
    num_s = solve_numerically(model, eps_grid, alpha, lam, n_samples, steps, seed + 1, progress)
    err = max(float((num_h - torch.tensor(closed_h, dtype=torch.float64)).abs().max()),
              float((num_s - torch.tensor(closed_s, dtype=torch.float64)).abs().max()))
    w2_grid = [i / 20 for i in range(21)]
    acc = [[robust_accuracy(model, 1.0, w2, e) for w2 in w2_grid] for e in accuracy_eps]
    return LinearTheoryResult(
        model=asdict(model), lam=lam, alpha=alpha, eps=list(eps_grid),
        eps0=threshold(model, 0.0), eps_alpha=threshold(model, alpha), e_max=model.e_max(),
        closed_hard=closed_h, closed_soft=closed_s, numeric_hard=num_h.tolist(),
        numeric_soft=num_s.tolist(), max_abs_error=err, accuracy_w2=w2_grid,
        accuracy_eps=list(accuracy_eps), accuracy=acc, seed=seed,
    )
