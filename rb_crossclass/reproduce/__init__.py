"""Reproductions of the papers' claims with the project's own tools (:mod:`.dynamics`: CAS during
adversarial training rises to the best checkpoint and falls with robust overfitting; :mod:`.seeds`
and :mod:`.aggregate`: several seeds of it, with the claims tested across seeds in :mod:`.claims`;
:mod:`.run`: a whole reproduction as one call, :func:`reproduce_dynamics` and
:func:`summarize_seeds`, what ``rb-crossclass reproduce`` runs)."""

from ..core.lazy import lazy_exports

__all__ = [
    "ReproductionReport",
    "reproduce_dynamics",
    "summarize_seeds",
    "DynamicsPreset",
    "ReproduceError",
    "RunSpec",
    "aggregate",
    "load_preset",
    "preset_for_seed",
    "read_seed_folder",
    "run_dynamics",
    "run_seeds",
    "write_aggregate",
]

lazy_exports(__name__, {
    "ReproductionReport": ".run",
    "reproduce_dynamics": ".run",
    "summarize_seeds": ".run",
    "aggregate": ".aggregate",
    "write_aggregate": ".aggregate",
    "DynamicsPreset": ".dynamics",
    "ReproduceError": ".dynamics",
    "RunSpec": ".dynamics",
    "load_preset": ".dynamics",
    "run_dynamics": ".dynamics",
    "preset_for_seed": ".seeds",
    "read_seed_folder": ".seeds",
    "run_seeds": ".seeds",
})
