"""Reproductions of the papers' claims with the project's own tools (:mod:`.dynamics`: CAS during
adversarial training rises to the best checkpoint and falls with robust overfitting; :mod:`.seeds`
and :mod:`.aggregate`: several seeds of it, with the claims tested across seeds in :mod:`.claims`;
:mod:`.run`: a whole reproduction as one call, :func:`reproduce_dynamics` and
:func:`summarize_seeds`, what ``rb-crossclass reproduce`` runs; :mod:`.progress`: what it tells
while it trains and after)."""

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

__all__ = [
    "ReproductionReport",
    "RunProgress",
    "format_duration",
    "report_lines",
    "resume_command",
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

if TYPE_CHECKING:
    from .aggregate import aggregate, write_aggregate
    from .dynamics import DynamicsPreset, ReproduceError, RunSpec, load_preset, run_dynamics
    from .progress import RunProgress, format_duration, report_lines, resume_command
    from .run import ReproductionReport, reproduce_dynamics, summarize_seeds
    from .seeds import preset_for_seed, read_seed_folder, run_seeds

lazy_exports(__name__)
