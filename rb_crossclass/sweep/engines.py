"""Engines run the jobs of a sweep and hand each result back as soon as it is there.

An engine is a function ``engine(jobs, settings, on_result, options)``: it runs
:func:`~rb_crossclass.sweep.worker.run_job` for every job and calls ``on_result(result)`` in the
calling process once per job, in completion order (the caller writes the card and
``sweep.json``, so a killed sweep loses at most the models in flight). Both engines run the same
function on the same inputs, so they give the same cards.

- ``local``: in this process, one model after another (progress bars inside each model).
- ``ray``: one Ray task per model with ``num_gpus=options.gpus_per_model`` (fractions let
  several small models share a GPU) and ``num_cpus=options.cpus_per_model``; Ray places the
  tasks on the machines of a cluster (``options.ray_address``, e.g. ``auto`` or
  ``ray://head:10001``) or of a local Ray instance started here (default). Ray is an optional
  dependency: ``pip install rb-crossclass[ray]``.

A new engine is one function decorated ``@register_engine("name")``, in this module or in a
module of this package named ``engine_<name>.py`` (imported when the engines are listed, so no
list needs editing; keep its heavy imports inside the function, since ``--engine``'s choices are
read when the command line is parsed). :data:`ENGINES` maps each name to its function.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ..core.registry import Registry
from .jobs import JobResult, ModelJob, SweepError, SweepSettings, one_line

log = logging.getLogger(__name__)

ResultCallback = Callable[[JobResult], None]
Engine = Callable[[Sequence[ModelJob], SweepSettings, ResultCallback, "EngineOptions"], None]
ENGINE_REGISTRY: Registry[Engine] = Registry(__package__, prefix="engine_")
"""``local`` and ``ray`` (below), then the modules ``sweep/engine_*.py`` (discovered on first use)."""
ENGINES = ENGINE_REGISTRY.entries  # the registered engines by name (kept as the public dict)


def register_engine(name: str) -> Callable[[Engine], Engine]:
    """Decorator registering ``engine(jobs, settings, on_result, options)`` as ``--engine name``."""
    return ENGINE_REGISTRY.register(name)


def available_engines() -> list[str]:
    """Registered engine names in registration order (``local``, ``ray``, then the modules
    ``sweep/engine_*.py`` and any engine registered since)."""
    return list(ENGINE_REGISTRY.discover())


def get_engine(name: str) -> Engine:
    """The engine registered as ``name``; raises :class:`SweepError` for an unknown name."""
    engine = ENGINE_REGISTRY.get(name)
    if engine is None:
        raise SweepError(f"unknown engine {name!r}; choose from {', '.join(available_engines())}")
    return engine


def run_job(job: ModelJob, settings: SweepSettings, split: object | None = None) -> JobResult:
    """:func:`rb_crossclass.sweep.worker.run_job`, imported on first use (listing the engines
    imports no torch)."""
    from .worker import run_job as run

    return run(job, settings, split)


@dataclass(frozen=True)
class EngineOptions:
    """Where jobs run: Ray's cluster address (``None``: a local instance, or the one already
    initialized in this process), GPUs and CPUs per model; ``split``: the test data already read,
    or a callable ``split(job)`` giving each job its own (:class:`~rb_crossclass.sweep.data.SplitCache`:
    ImageNet models get their own preprocessing); the local engine passes it to every job."""

    ray_address: str | None = None
    gpus_per_model: float = 0.0
    cpus_per_model: int | None = None
    split: object | None = None
    on_start: Callable[[ModelJob], None] | None = None  # called just before a local job starts


@register_engine("local")
def run_local(jobs: Sequence[ModelJob], settings: SweepSettings, on_result: ResultCallback,
              options: EngineOptions) -> None:
    """Run the jobs here, one after another."""
    if options.gpus_per_model > 1:
        raise SweepError("--gpus-per-model above 1 needs the ray engine (a local job uses one device)")
    for job in jobs:
        if options.on_start is not None:
            options.on_start(job)  # leaves a mark a killed process cannot clean up (see .record)
        try:
            try:
                split = options.split(job) if callable(options.split) else options.split
            except Exception as err:  # noqa: BLE001 - this model's data: recorded, the sweep goes on
                on_result(JobResult(job.name, "failed", reason=f"reading its test data: {one_line(err)}"))
                continue
            result = run_job(job, settings, split)
        except BaseException as err:  # Ctrl-C, SystemExit: not the model's fault, leave no mark
            on_result(JobResult(job.name, "failed", reason=f"interrupted ({type(err).__name__})"))
            raise
        on_result(result)


@register_engine("ray")
def run_ray(jobs: Sequence[ModelJob], settings: SweepSettings, on_result: ResultCallback,
            options: EngineOptions) -> None:
    """One Ray task per job; results handed back as tasks finish. A task that dies (out of
    memory, a lost node) is recorded as failed with Ray's error."""
    try:
        import ray
    except ImportError:
        raise SweepError("the ray engine needs Ray: pip install 'rb-crossclass[ray]'") from None
    if options.gpus_per_model < 0:
        raise SweepError(f"--gpus-per-model must be >= 0, got {options.gpus_per_model}")
    started = False
    if not ray.is_initialized():
        kwargs = {"address": options.ray_address, "logging_level": logging.WARNING}
        if options.ray_address is None:
            kwargs["include_dashboard"] = False
        try:
            ray.init(**kwargs)
        except Exception as err:  # noqa: BLE001 - connection errors come in many types
            raise SweepError(f"cannot start or join Ray (address {options.ray_address!r}): "
                             f"{one_line(err)}") from err
        started = True
    cpus = options.cpus_per_model or 1
    # workers print no progress bars (they would interleave); the threads match the CPUs reserved
    worker_settings = replace(settings, progress=False, threads=settings.threads or cpus)
    task = ray.remote(run_job).options(num_cpus=cpus, num_gpus=options.gpus_per_model, max_retries=0,
                                       name="rb-crossclass-sweep")
    pending = {}
    try:
        pending = {task.remote(job, worker_settings): job for job in jobs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                job = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as err:  # noqa: BLE001 - RayTaskError, WorkerCrashedError, OOM ...
                    result = JobResult(job.name, "failed", reason=one_line(err))
                on_result(result)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()
