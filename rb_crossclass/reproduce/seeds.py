"""Several seeds of one reproduction: training each seed as an ordinary single-seed reproduction in
``DIR/seed_<s>/``, and reading the seed folders back (finished or not) for the aggregate.

The training ``seed`` of the preset's base config is the only thing a seed changes; it seeds the
weight initialisation, the order of the training data and the random start of every attack
(training and held-out evaluation), so two seeds are two independent trainings of the same recipe.

A seed folder is read from its runs (``runs/<name>/metrics.jsonl``, ``summary.json`` marking a
finished run; the folder of a reproduction still being trained) and, for runs without such a
folder, from its ``dynamics.json`` (e.g. a published reproduction that ships only that file).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .dynamics import DynamicsPreset, DynamicsResult, ReproduceError, RunSpec, collect_run, run_dynamics

SEED_FOLDER = re.compile(r"seed_(\d+)$")


def seed_folder(out: str | Path, seed: int) -> Path:
    """Where seed ``seed`` of a multi-seed reproduction in ``out`` lives."""
    return Path(out) / f"seed_{seed}"


def preset_for_seed(preset: DynamicsPreset, seed: int) -> DynamicsPreset:
    """``preset`` with its base config's training ``seed`` set to ``seed`` (the preset is unchanged)."""
    base = json.loads(json.dumps(preset.base))
    base["seed"] = int(seed)
    return dataclasses.replace(preset, base=base)


def pending_runs(preset: DynamicsPreset, out: str | Path, only: Sequence[str] | None = None) -> list[RunSpec]:
    """The runs of ``preset`` in ``out`` that a reproduction would still train (no ``summary.json``)."""
    return [s for s in preset.runs if (not only or s.name in only)
            and not (Path(out) / "runs" / s.name / "summary.json").is_file()]


def run_seeds(preset: DynamicsPreset, out: str | Path, seeds: Sequence[int], *,
              only: Sequence[str] | None = None,
              on_run: Callable[[int, RunSpec, str], None] | None = None) -> list[DynamicsResult]:
    """Train every seed of ``seeds`` as an ordinary reproduction in ``out/seed_<s>`` (finished runs
    skipped, an interrupted one resumed); returns the seeds' results in order."""
    check_seeds(seeds)
    results = []
    for seed in seeds:
        hook = None if on_run is None else (lambda spec, phase, s=seed: on_run(s, spec, phase))
        results.append(run_dynamics(preset_for_seed(preset, seed), seed_folder(out, seed),
                                    only=list(only) if only else None, on_run=hook))
    return results


def check_seeds(seeds: Sequence[int]) -> None:
    """Seeds must be distinct non-negative integers (a seed counted twice is not a replicate)."""
    if not seeds:
        raise ReproduceError("no seed given")
    if len(set(seeds)) != len(seeds):
        raise ReproduceError(f"seeds must be distinct, got {list(seeds)}")
    if any(int(s) < 0 for s in seeds):
        raise ReproduceError(f"seeds must be ≥ 0, got {list(seeds)}")


@dataclass
class SeedFolder:
    """One seed's reproduction as read back: ``runs`` in the form of ``dynamics.json``'s runs, and
    where each came from (``runs/`` or ``dynamics.json``; ``missing`` when neither has it)."""

    seed: int
    folder: str
    runs: list[dict]
    sources: dict[str, str] = field(default_factory=dict)
    score_files: dict[str, list[str]] = field(default_factory=dict)  # run -> its per-epoch score files


def parse_seed_dir(text: str) -> tuple[int | None, Path]:
    """``DIR`` or ``SEED=DIR`` (the seed given explicitly)."""
    seed, sep, path = text.partition("=")
    if sep and seed.strip().isdigit():
        return int(seed), Path(path)
    return None, Path(text)


def read_seed_folder(folder: str | Path, preset: DynamicsPreset, seed: int | None = None) -> SeedFolder:
    """Read one seed's runs (see the module docstring); the seed is ``seed`` when given, else the
    ``seed`` of the runs' ``config.yaml``, of ``dynamics.json``, or of a folder named ``seed_<s>``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReproduceError(f"seed folder not found: {folder}")
    published = _read_dynamics_json(folder)
    found = _seed_of(folder, published)
    if seed is not None and found is not None and found != seed:
        raise ReproduceError(f"{folder}: was trained with seed {found}, not {seed}")
    seed = seed if seed is not None else found
    if seed is None:
        raise ReproduceError(f"cannot tell the seed of {folder} (no config.yaml, no 'seed' in dynamics.json, "
                             f"not named seed_<s>): write it as SEED={folder}")
    by_name = {r["name"]: r for r in (published or {}).get("runs", [])}
    specs = list(preset.runs) + [RunSpec(n, r["recipe"], r["eps"], teacher=r.get("teacher"))
                                 for n, r in by_name.items() if n not in {s.name for s in preset.runs}]
    runs, sources, scores = [], {}, {}
    for spec in specs:
        run_dir = folder / "runs" / spec.name
        if (run_dir / "metrics.jsonl").is_file():
            runs.append(collect_run(run_dir, spec))
            sources[spec.name] = "runs"
            scores[spec.name] = sorted(str(p) for p in (run_dir / "scores").glob("epoch_*.json"))
        elif spec.name in by_name:
            run = by_name[spec.name]
            runs.append({"name": spec.name, "recipe": run.get("recipe", spec.recipe),
                         "eps": run.get("eps", spec.eps), "teacher": run.get("teacher"),
                         "finished": bool(run.get("finished")), "epochs": list(run.get("epochs") or [])})
            sources[spec.name] = "dynamics.json"
        else:
            runs.append({"name": spec.name, "recipe": spec.recipe, "eps": spec.eps, "teacher": spec.teacher,
                         "finished": False, "epochs": []})
            sources[spec.name] = "missing"
    return SeedFolder(seed, str(folder), runs, sources, scores)


def _read_dynamics_json(folder: Path) -> dict | None:
    path = folder / "dynamics.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ReproduceError(f"{path}: not readable JSON ({str(err)[:200]})") from err
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        raise ReproduceError(f"{path}: not a reproduction's dynamics.json (no 'runs' list)")
    if data.get("kind") == "seeds":
        raise ReproduceError(f"{path}: an aggregate of several seeds, not one seed's reproduction")
    return data


def _seed_of(folder: Path, published: dict | None) -> int | None:
    """The training seed recorded in ``folder`` (every run's config must agree)."""
    seeds = set()
    for spec_dir in sorted((folder / "runs").glob("*/config.yaml")):
        try:
            cfg = yaml.safe_load(spec_dir.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(cfg, dict) and isinstance(cfg.get("seed"), int):
            seeds.add(cfg["seed"])
    if len(seeds) > 1:
        raise ReproduceError(f"{folder}: its runs were trained with different seeds {sorted(seeds)}")
    if seeds:
        return seeds.pop()
    if published is not None and isinstance(published.get("seed"), int):
        return published["seed"]
    match = SEED_FOLDER.search(folder.name)
    return int(match.group(1)) if match else None
