"""Reproductions of the papers' claims with the project's own tools (:mod:`.dynamics`: CAS during
adversarial training rises to the best checkpoint and falls with robust overfitting; :mod:`.seeds`
and :mod:`.aggregate`: several seeds of it, with the claims tested across seeds in :mod:`.claims`)."""

from .aggregate import aggregate, write_aggregate
from .dynamics import DynamicsPreset, ReproduceError, RunSpec, load_preset, run_dynamics
from .seeds import preset_for_seed, read_seed_folder, run_seeds

__all__ = ["DynamicsPreset", "ReproduceError", "RunSpec", "aggregate", "load_preset", "preset_for_seed",
           "read_seed_folder", "run_dynamics", "run_seeds", "write_aggregate"]
