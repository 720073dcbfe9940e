"""The cross-class feature metric of Wei, Guo & Wang (ICML 2025), plus our feature-sharing index.

For a classifier ``f(x) = W g(x) + b`` with K classes (``g(x): [D]`` penultimate features,
``W: [K,D]``):

- attribution of sample ``x`` for class ``i``: ``a_i(x) = g(x) ⊙ W[i]`` (bias ignored);
- class attribution vector ``A_i`` = mean of ``a_i(x)`` over the samples of class ``i``
  (the scorer feeds adversarial examples; clean inputs give the clean matrix);
- attribution matrix ``C[i,j] = cos(A_i, A_j)``;
- ``CAS = Σ_{i≠j} max(C[i,j], 0)`` over ordered pairs (0 ≤ CAS ≤ K(K−1));
- ``normalized CAS = CAS / (K'(K'−1))`` with K' the classes that have samples (= K normally).

Every sample is used (the paper's code keeps 100·⌊n_i/100⌋ per class). A class with no sample
has no ``A_i``: its row and column of ``C`` are NaN, it is listed by
:meth:`AttributionAccumulator.empty_classes`, and it is left out of CAS (never silently
counted as zero).

The **feature-sharing index** (FSI) is our extension, not the paper's: with
``P_i = max(A_i, 0)`` and, for each feature ``j`` with ``s_j = Σ_i P_i[j] > 0``,
``p_ij = P_i[j] / s_j`` and ``N_eff(j) = 1 / Σ_i p_ij²`` (the effective number of classes that
use feature ``j``), ``FSI = Σ_j w_j N_eff(j)`` with ``w_j = s_j / Σ_j s_j``. It ranges over
[1, K]: 1 when every feature serves a single class, K when every feature is shared equally by
all classes.

All sums are kept in float64 so partial sums of shards (ranks, batches) add up to the
single-process result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = [
    "AttributionAccumulator",
    "attribution_matrix",
    "cas",
    "class_attribution_vectors",
    "feature_sharing_index",
    "normalized_cas",
    "per_class_scores",
    "top_shared_pairs",
    "valid_classes",
]


class AttributionAccumulator:
    """Streaming per-class sums of ``g(x) ⊙ W[y]`` and sample counts (float64 / int64).

    Holds only ``sums [K,D]`` and ``counts [K]``, so a pass over any number of images never
    keeps their features. Shards combine with :meth:`merge_` (same process) or
    :meth:`all_reduce_` (``torch.distributed``).
    """

    def __init__(self, num_classes: int, feature_dim: int,
                 device: torch.device | str | None = None) -> None:
        if num_classes < 1 or feature_dim < 1:
            raise ValueError(f"need num_classes >= 1 and feature_dim >= 1, got {num_classes}, {feature_dim}")
        self.num_classes = int(num_classes)
        self.feature_dim = int(feature_dim)
        self.sums = torch.zeros(num_classes, feature_dim, dtype=torch.float64, device=device)
        self.counts = torch.zeros(num_classes, dtype=torch.int64, device=device)

    @torch.no_grad()
    def update(self, features: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor) -> None:
        """Add a batch: ``features [B,D]`` (any float dtype), ``weight [K,D]``, ``labels [B]`` in [0,K)."""
        if features.dim() != 2 or features.shape[1] != self.feature_dim:
            raise ValueError(f"features must be [B,{self.feature_dim}], got {tuple(features.shape)}")
        if tuple(weight.shape) != (self.num_classes, self.feature_dim):
            raise ValueError(
                f"weight must be [{self.num_classes},{self.feature_dim}], got {tuple(weight.shape)}"
            )
        if labels.shape != (features.shape[0],):
            raise ValueError(f"labels must be [{features.shape[0]}], got {tuple(labels.shape)}")
        if labels.numel() == 0:
            return
        labels = labels.to(self.sums.device, torch.int64)
        if int(labels.min()) < 0 or int(labels.max()) >= self.num_classes:
            raise ValueError(f"labels must lie in [0, {self.num_classes}), got "
                             f"[{int(labels.min())}, {int(labels.max())}]")
        # Σ_{x in class i} g(x) ⊙ W[i] = (Σ_{x in class i} g(x)) ⊙ W[i]: one index_add, one product.
        feat_sums = torch.zeros_like(self.sums)
        feat_sums.index_add_(0, labels, features.detach().to(self.sums.device, torch.float64))
        self.sums += feat_sums * weight.detach().to(self.sums.device, torch.float64)
        self.counts += torch.bincount(labels, minlength=self.num_classes)

    def merge_(self, other: AttributionAccumulator) -> AttributionAccumulator:
        """Add another shard's sums and counts into this one (in place); returns ``self``."""
        if (other.num_classes, other.feature_dim) != (self.num_classes, self.feature_dim):
            raise ValueError("cannot merge accumulators of different shapes")
        self.sums += other.sums.to(self.sums.device)
        self.counts += other.counts.to(self.counts.device)
        return self

    def all_reduce_(self, group=None) -> AttributionAccumulator:
        """Sum sums and counts over all ranks of ``torch.distributed`` (no-op when not initialized)."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.sums, op=dist.ReduceOp.SUM, group=group)
            dist.all_reduce(self.counts, op=dist.ReduceOp.SUM, group=group)
        return self

    def vectors(self) -> torch.Tensor:
        """Class attribution vectors ``A: [K,D]`` float64 (``A_i = sums_i / counts_i``; zero rows
        for empty classes, see :meth:`empty_classes`)."""
        denom = self.counts.clamp_min(1).to(torch.float64).unsqueeze(1)
        return self.sums / denom

    def empty_classes(self) -> list[int]:
        """Indices of classes that received no sample."""
        return [int(i) for i in torch.nonzero(self.counts == 0).flatten().tolist()]

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"sums": self.sums.clone(), "counts": self.counts.clone()}

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> AttributionAccumulator:
        sums, counts = state["sums"], state["counts"]
        acc = cls(sums.shape[0], sums.shape[1], device=sums.device)
        acc.sums.copy_(sums)
        acc.counts.copy_(counts)
        return acc

    def matrix(self) -> torch.Tensor:
        """The attribution matrix ``[K,K]`` of the accumulated vectors (NaN for empty classes)."""
        return attribution_matrix(self.vectors())


def class_attribution_vectors(features: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor,
                              num_classes: int) -> torch.Tensor:
    """``A: [K,D]`` float64, ``A_i`` = mean of ``features[n] ⊙ weight[i]`` over ``labels[n] == i``.

    ``features [N,D]``, ``weight [K,D]``, ``labels [N]``. Rows of classes without samples are
    zero; :func:`attribution_matrix` turns them into NaN rows/columns.
    """
    acc = AttributionAccumulator(num_classes, features.shape[1], device=features.device)
    acc.update(features, weight, labels)
    return acc.vectors()


def attribution_matrix(vectors: torch.Tensor) -> torch.Tensor:
    """Cosine similarity matrix ``C: [K,K]`` float64 of ``vectors [K,D]``.

    A zero row (a class without samples) has no direction: its row and column are NaN. The
    diagonal of every other class is exactly 1.
    """
    v = torch.as_tensor(vectors).to(torch.float64)
    norms = v.norm(dim=1)
    valid = norms > 0
    unit = v / norms.clamp_min(torch.finfo(torch.float64).tiny).unsqueeze(1)
    c = (unit @ unit.T).clamp(-1.0, 1.0)
    c.fill_diagonal_(1.0)
    c[~valid, :] = math.nan
    c[:, ~valid] = math.nan
    return c


def valid_classes(matrix: torch.Tensor) -> torch.Tensor:
    """Boolean ``[K]``: classes whose diagonal entry is defined (they had samples)."""
    m = torch.as_tensor(matrix, dtype=torch.float64)
    return ~torch.isnan(torch.diagonal(m))


def _positive_off_diagonal(matrix: torch.Tensor) -> torch.Tensor:
    m = torch.as_tensor(matrix, dtype=torch.float64).clone()
    m = torch.nan_to_num(m, nan=0.0).clamp_min(0.0)
    m.fill_diagonal_(0.0)
    return m


def cas(matrix: torch.Tensor) -> float:
    """``Σ_{i≠j} max(C[i,j], 0)`` over ordered pairs of classes with samples (NaN entries skipped)."""
    return float(_positive_off_diagonal(matrix).sum())


def normalized_cas(matrix: torch.Tensor) -> float:
    """``cas / (K'(K'−1))`` in [0,1], K' = classes with samples; NaN when K' < 2."""
    k = int(valid_classes(matrix).sum())
    if k < 2:
        return math.nan
    return cas(matrix) / (k * (k - 1))


def per_class_scores(matrix: torch.Tensor) -> torch.Tensor:
    """Per-class cross-class score ``[K]``: row sums of the positive off-diagonal part of ``C``
    (NaN for classes without samples). Sums to :func:`cas`."""
    m = torch.as_tensor(matrix, dtype=torch.float64)
    scores = _positive_off_diagonal(m).sum(dim=1)
    scores[~valid_classes(m)] = math.nan
    return scores


def top_shared_pairs(matrix: torch.Tensor, k: int = 5,
                     class_names: Sequence[str] | None = None) -> list[dict]:
    """The ``k`` unordered class pairs ``i < j`` with the highest ``C[i,j]`` (NaN pairs skipped).

    Returns ``[{"i", "j", "class_i", "class_j", "cosine"}, ...]`` sorted by cosine, highest
    first (ties by index).
    """
    m = torch.as_tensor(matrix, dtype=torch.float64)
    num = m.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(num)]
    if len(names) != num:
        raise ValueError(f"{len(names)} class names for a {num}x{num} matrix")
    iu, ju = torch.triu_indices(num, num, offset=1)
    vals = m[iu, ju]
    keep = ~torch.isnan(vals)
    iu, ju, vals = iu[keep].tolist(), ju[keep].tolist(), vals[keep].tolist()
    order = sorted(range(len(vals)), key=lambda n: (-vals[n], iu[n], ju[n]))[: max(k, 0)]
    return [{"i": iu[n], "j": ju[n], "class_i": names[iu[n]], "class_j": names[ju[n]],
             "cosine": vals[n]} for n in order]


def feature_sharing_index(vectors: torch.Tensor) -> float:
    """Our feature-sharing index of ``vectors [K,D]`` (see the module docstring), in [1, K].

    Zero rows (empty classes) contribute nothing. NaN when no feature has positive attribution.
    """
    p = torch.as_tensor(vectors, dtype=torch.float64).clamp_min(0.0)
    mass = p.sum(dim=0)  # s_j
    used = mass > 0
    if not bool(used.any()):
        return math.nan
    share = p[:, used] / mass[used]  # p_ij
    n_eff = 1.0 / (share * share).sum(dim=0)
    w = mass[used] / mass[used].sum()
    return float((w * n_eff).sum())
