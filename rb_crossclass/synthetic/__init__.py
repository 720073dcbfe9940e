"""Synthetic data models of the theory, runnable in minutes on a CPU.

- :mod:`.crossclass_gaussian` — the cross-class Gaussian model (Wei, Guo & Wang, ICML 2025) and
  the robust optimum of its two-weight linear classifier (closed form + numerical check);
- :mod:`.crossclass_network` — a small network trained on that data with our recipes and scored
  per epoch with the cross-class scorer;
- :mod:`.patch_features` — robust-sparse / non-robust-dense patch data and a two-layer
  smoothed-ReLU CNN (Li & Li, ICLR 2025), standard vs adversarial training;
- :mod:`.study` — each study as one call (:func:`run_crossclass_study`, :func:`run_patch_study`:
  inputs checked, JSON and figures written), what ``rb-crossclass synthetic`` runs.

Importing this package runs nothing; heavy modules are imported by the functions that need them.
"""

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

__all__ = [
    "DEFAULT_NET_EPS",
    "DEFAULT_RECIPES",
    "StudyReport",
    "SyntheticError",
    "check_crossclass_inputs",
    "run_crossclass_study",
    "run_patch_study",
    "CrossClassGaussian",
    "PatchConfig",
    "closed_form",
    "run_experiment",
    "solve_numerically",
    "sweep",
    "threshold",
]

if TYPE_CHECKING:
    from .crossclass_gaussian import CrossClassGaussian, closed_form, solve_numerically, sweep, threshold
    from .patch_features import PatchConfig, run_experiment
    from .study import (
        DEFAULT_NET_EPS,
        DEFAULT_RECIPES,
        StudyReport,
        SyntheticError,
        check_crossclass_inputs,
        run_crossclass_study,
        run_patch_study,
    )

lazy_exports(__name__)
