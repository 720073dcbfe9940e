"""How often does the bootstrap 95 % interval of CAS cover the CAS of all the data?

This measurement chose :data:`rb_crossclass.crossclass.uncertainty.MIN_POINTS_PER_CLASS`, the
rule under which a CAS interval is withheld. Synthetic penultimate features of K classes
(K = 10, 100, 1000: CIFAR-10, CIFAR-100, ImageNet sizes): ``g = relu(mu_y + noise)`` with a
shared and a class-specific part in ``mu``, a random head ``W``. The CAS of all the data is
exact: ``E[relu(m + s z)] = m Φ(m/s) + s φ(m/s)`` gives every class attribution vector without
sampling. A draw is a test set with ``n`` points per class (the first-N subset of a shuffled
test set); its interval (:func:`~rb_crossclass.crossclass.bootstrap_cas`, 200 resamples) covers
or misses the exact CAS. Coverage = covered draws / draws, per K and n.

    .venv/bin/python benchmarks/bench_cas_interval_coverage.py           # ~10 min on 1 core

Writes ``benchmarks/results/cas_interval_coverage.json`` (``--out`` to choose another path).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

from rb_crossclass.core.io import atomic_write_json
from rb_crossclass.crossclass import attribution_matrix, bootstrap_cas, cas, class_attribution_vectors

DIM = 64
NOISE = 1.5


def population(k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Class means ``mu [K,D]``, head ``W [K,D]`` and the exact CAS of the population."""
    g = torch.Generator().manual_seed(seed)
    shared = torch.randn(DIM, generator=g, dtype=torch.float64)
    mu = 0.7 * shared + torch.randn(k, DIM, generator=g, dtype=torch.float64)
    weight = torch.randn(k, DIM, generator=g, dtype=torch.float64)
    r = mu / NOISE
    normal = torch.distributions.Normal(0.0, 1.0)
    mean = mu * normal.cdf(r) + NOISE * torch.exp(-r * r / 2) / math.sqrt(2 * math.pi)
    return mu, weight, cas(attribution_matrix(mean * weight))


def draw(mu: torch.Tensor, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points per class: features ``[K*n, D]`` and labels ``[K*n]``."""
    labels = torch.arange(mu.shape[0]).repeat_interleave(n)
    feats = torch.relu(mu[labels] + NOISE * torch.randn(len(labels), DIM, generator=g, dtype=torch.float64))
    return feats, labels


def coverage(k: int, n: int, draws: int, seed: int = 0) -> dict:
    mu, weight, truth = population(k, seed)
    g = torch.Generator().manual_seed(seed + 1)
    covered, widths, points = 0, [], []
    for i in range(draws):
        feats, labels = draw(mu, n, g)
        lo, hi = bootstrap_cas(feats, labels, weight, seed=i)
        covered += lo <= truth <= hi
        widths.append(hi - lo)
        points.append(cas(attribution_matrix(class_attribution_vectors(feats, weight, labels, k))))
    return {"k": k, "per_class": n, "draws": draws, "covered": covered, "coverage": covered / draws,
            "truth": truth, "mean_point": sum(points) / draws, "mean_width": sum(widths) / draws}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_out = Path(__file__).parent / "results" / "cas_interval_coverage.json"
    parser.add_argument("--out", type=Path, default=default_out)
    parser.add_argument("--per-class", type=int, nargs="+", default=[1, 2, 3, 5, 10, 20, 50])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for k, draws in ((10, 100), (100, 40), (1000, 20)):
        for n in args.per_class:
            row = coverage(k, n, draws)
            rows.append(row)
            print(f"K={k:5d} n/class={n:3d}: covered {row['covered']:3d}/{draws} "
                  f"(exact {row['truth']:.2f}, mean point {row['mean_point']:.2f}, "
                  f"mean width {row['mean_width']:.2f})", file=sys.stderr, flush=True)
    atomic_write_json(args.out, {"dim": DIM, "noise": NOISE, "resamples": 200, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
