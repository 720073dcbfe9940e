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
    "write_plan",
]

lazy_exports(__name__, {
    "ENGINES": ".engines",
    "EngineOptions": ".engines",
    "available_engines": ".engines",
    "get_engine": ".engines",
    "register_engine": ".engines",
    "JobResult": ".jobs",
    "ModelJob": ".jobs",
    "SweepError": ".jobs",
    "SweepSettings": ".jobs",
    "Manifest": ".manifest",
    "ManifestError": ".manifest",
    "load_manifest": ".manifest",
    "manifest_schema": ".manifest",
    "manifest_schema_path": ".manifest",
    "PlanEntry": ".plan",
    "plan_job": ".plan",
    "plan_robustbench_entry": ".plan",
    "write_plan": ".plan",
    "PlanReport": ".run",
    "SweepReport": ".run",
    "parse_board": ".run",
    "plan_summary": ".run",
    "plan_sweep": ".run",
    "robustbench_boards": ".run",
    "run_sweep": ".run",
    "summary_table": ".run",
    "run_job": ".worker",
})
