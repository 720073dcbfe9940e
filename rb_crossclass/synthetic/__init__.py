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

lazy_exports(__name__, {
    "DEFAULT_NET_EPS": ".study",
    "DEFAULT_RECIPES": ".study",
    "StudyReport": ".study",
    "SyntheticError": ".study",
    "check_crossclass_inputs": ".study",
    "run_crossclass_study": ".study",
    "run_patch_study": ".study",
    "CrossClassGaussian": ".crossclass_gaussian",
    "closed_form": ".crossclass_gaussian",
    "solve_numerically": ".crossclass_gaussian",
    "sweep": ".crossclass_gaussian",
    "threshold": ".crossclass_gaussian",
    "PatchConfig": ".patch_features",
    "run_experiment": ".patch_features",
})
