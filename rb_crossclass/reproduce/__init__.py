"""Reproductions of the papers' claims with the project's own tools (:mod:`.dynamics`: CAS during
adversarial training rises to the best checkpoint and falls with robust overfitting)."""

from .dynamics import DynamicsPreset, ReproduceError, RunSpec, load_preset, run_dynamics

__all__ = ["DynamicsPreset", "ReproduceError", "RunSpec", "load_preset", "run_dynamics"]
