"""Sweeps: score every model of a leaderboard (RobustBench's zoo) or of a manifest of published
models, on one machine or on a Ray cluster, resumably, and rebuild the extended leaderboard.

- :mod:`.jobs` — a model to score (:class:`ModelJob`), the settings (:class:`SweepSettings`),
  a result (:class:`JobResult`);
- :mod:`.manifest` — manifest files and their JSON Schema;
- :mod:`.worker` — :func:`run_job`: applicability, scores and the card of one model;
- :mod:`.engines` — ``local`` and ``ray`` (one Ray task per model), and the engine registry
  (:func:`register_engine`, :func:`available_engines`);
- :mod:`.record` — ``sweep.json`` and resuming;
- :mod:`.plan` — applicability without weights (``--plan``);
- :mod:`.run` — :func:`run_sweep` and :func:`plan_sweep`, what ``rb-crossclass sweep`` calls.
"""

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

__all__ = [
    "ENGINES",
    "EngineOptions",
    "available_engines",
    "get_engine",
    "register_engine",
    "JobResult",
    "Manifest",
    "ManifestError",
    "ModelJob",
    "PlanEntry",
    "PlanReport",
    "SweepError",
    "SweepReport",
    "SweepSettings",
    "load_manifest",
    "manifest_schema",
    "manifest_schema_path",
    "parse_board",
    "plan_job",
    "plan_robustbench_entry",
    "plan_summary",
    "plan_sweep",
    "robustbench_boards",
    "run_job",
    "run_sweep",
    "summary_table",
    "sweep_summary",
    "failure_message",
    "write_plan",
]

if TYPE_CHECKING:
    from .engines import (
        ENGINES,
        EngineOptions,
        available_engines,
        get_engine,
        register_engine,
    )
    from .jobs import JobResult, ModelJob, SweepError, SweepSettings
    from .manifest import Manifest, ManifestError, load_manifest, manifest_schema, manifest_schema_path
    from .plan import PlanEntry, plan_job, plan_robustbench_entry, write_plan
    from .run import (
        PlanReport,
        SweepReport,
        failure_message,
        parse_board,
        plan_summary,
        plan_sweep,
        robustbench_boards,
        run_sweep,
        summary_table,
        sweep_summary,
    )
    from .worker import run_job

lazy_exports(__name__)
