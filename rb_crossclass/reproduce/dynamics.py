"""Reproducing the paper's training dynamics with our own tool (Wei, Guo & Wang, ICML 2025).

The claim: in adversarial training the model first learns more cross-class features, CAS peaks
near the best-robustness checkpoint, and as robust overfitting sets in CAS falls; the best−last
gap grows with ε, and soft labels (knowledge distillation, EMA self-distillation) keep CAS.

A preset (``rb_crossclass/configs/reproduce_dynamics_<name>.yaml``, or any YAML file of that form)
names a base training config and a list of runs (recipe, ε, recipe parameters; ``teacher: <run>``
makes a ``kd`` run distil from that run's best checkpoint). Every run is an ordinary
:func:`rb_crossclass.train.train` run in ``DIR/runs/<name>`` with ``--resume`` semantics, so
rerunning the command continues where it stopped. The outputs:

- ``DIR/dynamics.json``: ``{"runs": [{"recipe", "eps", "name", "epochs": [{"epoch", "lr",
  "clean_acc", "robust_acc", "cas", ...}]}]}`` (accuracies in percent; CAS of the held-out PGD
  examples);
- ``DIR/dynamics.png``: robust accuracy and CAS per epoch, one panel per run, best epoch marked;
- ``DIR/table.md``: CAS and robust accuracy at an early epoch, mid-training, the best and the last
  epoch; best−last gaps; ΔCAS against ε;
- ``DIR/attribution_matrix_diff_<run>.png``: best minus last epoch's attribution matrix of the
  runs named in the preset's ``compare`` list (their ``scores/epoch_XXX.json`` files are readable by
  ``rb-crossclass score --compare`` too).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import RBCrossclassError
from ..core.io import atomic_write_json, atomic_write_text
from ..core.names import check_model_id
from ..core.threat import format_eps, parse_eps
from ..train import config_from_dict, train
from ..train.config import expand_data_spec
from ..train.outputs import read_jsonl

log = logging.getLogger(__name__)


class ReproduceError(RBCrossclassError, ValueError):
    """A reproduction preset or folder cannot be used; the message names it."""


@dataclass(frozen=True)
class RunSpec:
    """One training run of a reproduction: ``recipe`` at ``eps`` (``8/255`` style) with extra recipe
    ``params``; ``teacher`` names another run whose best checkpoint a ``kd`` run distils from."""

    name: str
    recipe: str
    eps: str
    params: dict = field(default_factory=dict)
    teacher: str | None = None


@dataclass
class DynamicsPreset:
    """A base training config and the runs made from it."""

    name: str
    description: str
    base: dict
    runs: list[RunSpec]
    compare: list[str] = field(default_factory=list)  # runs whose best-vs-last matrices are drawn
    step_ratio: float = 2.5  # attack step = step_ratio * eps / steps (PGD-AT's usual 2/255 for 10 steps)


def preset_path(preset: str) -> Path:
    """A preset name (``cpu``, ``paper``) or a YAML file."""
    path = Path(preset)
    if path.suffix in (".yaml", ".yml") or os.sep in preset:
        if not path.is_file():
            raise ReproduceError(f"preset file not found: {path}")
        return path
    packaged = resources.files("rb_crossclass") / "configs" / f"reproduce_dynamics_{preset}.yaml"
    if not packaged.is_file():
        raise ReproduceError(f"unknown preset {preset[:60]!r}: use cpu, paper or a YAML file")
    return Path(str(packaged))


def load_preset(preset: str, overrides: dict[str, Any] | None = None) -> DynamicsPreset:
    """Read a preset; ``overrides`` set keys of its base config (``optim.epochs``: 2)."""
    path = preset_path(preset)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ReproduceError(f"{path}: not readable YAML ({str(err)[:200]})") from err
    if not isinstance(data, dict) or not isinstance(data.get("base"), dict) or not data.get("runs"):
        raise ReproduceError(f"{path}: a preset needs a 'base' training config and a list of 'runs'")
    base = json.loads(json.dumps(data["base"]))
    for key, value in (overrides or {}).items():
        node = base
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    for key in ("train", "eval"):  # a preset on the shared data says so before any run starts
        spec = (base.get("data") or {}).get(key)
        if isinstance(spec, str):
            expand_data_spec(spec)
    runs = []
    for i, r in enumerate(data["runs"]):
        if not isinstance(r, dict) or "recipe" not in r or "eps" not in r:
            raise ReproduceError(f"{path}: runs[{i}] needs 'recipe' and 'eps'")
        eps = format_eps(str(r["eps"]))  # kept as written (0.2 stays 0.2, not 51/255)
        parse_eps(eps)
        name = r.get("name") or f"{r['recipe']}_eps{eps.replace('/', '-')}"
        runs.append(RunSpec(check_model_id(name, "run name"), r["recipe"], eps, dict(r.get("params") or {}),
                            r.get("teacher")))
    names = [r.name for r in runs]
    for r in runs:
        if r.teacher is not None and (r.teacher not in names or names.index(r.teacher) > names.index(r.name)):
            raise ReproduceError(f"{path}: run {r.name} distils from {r.teacher!r}, which must be an "
                                 "earlier run")
    return DynamicsPreset(str(data.get("name", path.stem)), str(data.get("description", "")), base, runs,
                          list(data.get("compare") or []), float(data.get("step_ratio", 2.5)))


def run_config(preset: DynamicsPreset, spec: RunSpec, out: Path) -> dict:
    """The full training config of one run: the base with the run's recipe, ε and evaluation ε."""
    cfg = json.loads(json.dumps(preset.base))
    params = dict((cfg.get("recipe") or {}).get("params") or {})
    steps = int(spec.params.get("steps", params.get("steps", 10)))
    params.update(eps=spec.eps, step_size=_step_size(spec.eps, preset.step_ratio, steps))
    params.update(spec.params)
    if spec.teacher is not None:
        teacher_dir = out / "runs" / spec.teacher
        params.update(teacher=cfg["model"]["source"],
                      teacher_checkpoint=str(teacher_dir / "checkpoints" / "best" / "model.safetensors"),
                      teacher_options={"extra": dict(cfg["model"].get("extra") or {}),
                                       "cifar_stem": cfg["model"].get("cifar_stem")})
    cfg["name"] = spec.name
    cfg["recipe"] = {"name": spec.recipe, "params": params}
    cfg.setdefault("eval", {})["eps"] = spec.eps
    return cfg


def _step_size(eps: str, ratio: float, steps: int) -> str:
    """``ratio * eps / steps``, exact as a fraction when ``eps`` is written as one (8/255, ratio 2.5,
    3 steps → ``4/153``), else a decimal."""
    if "/" in eps:
        num, den = eps.split("/")
        step = Fraction(num) * Fraction(ratio).limit_denominator(1000) / (Fraction(den) * max(steps, 1))
        return f"{step.numerator}/{step.denominator}"
    return format_eps(ratio * parse_eps(eps) / max(steps, 1))


@dataclass
class DynamicsResult:
    out_dir: str
    runs: list[dict]
    trained: list[str]
    skipped: list[str]
    seconds: dict[str, float]


def run_dynamics(preset: DynamicsPreset, out: str | os.PathLike, *,
                 only: list[str] | None = None,
                 on_run: Callable[[RunSpec, str], None] | None = None) -> DynamicsResult:
    """Train every run of ``preset`` under ``out/runs`` (finished runs are skipped, interrupted ones
    resumed), then write the summary files (see the module docstring)."""
    out = Path(out)
    unknown = sorted(set(only or []) - {r.name for r in preset.runs})
    if unknown:
        raise ReproduceError(f"no run(s) {unknown} in preset {preset.name}; "
                             f"runs: {[r.name for r in preset.runs]}")
    trained, skipped, seconds = [], [], {}
    for spec in preset.runs:
        if only and spec.name not in only:
            continue
        run_dir = out / "runs" / spec.name
        if (run_dir / "summary.json").is_file():
            skipped.append(spec.name)
            continue
        if spec.teacher is not None and not (out / "runs" / spec.teacher / "summary.json").is_file():
            raise ReproduceError(f"run {spec.name} needs its teacher run {spec.teacher} to finish first")
        if on_run is not None:
            on_run(spec, "start")
        result = train(config_from_dict(run_config(preset, spec, out), f"preset {preset.name}: {spec.name}"),
                       run_dir, resume=True)
        trained.append(spec.name)
        seconds[spec.name] = result.seconds
        if on_run is not None:
            on_run(spec, "done")
    runs = collect_runs(preset, out)
    write_outputs(preset, out, runs)
    return DynamicsResult(str(out), runs, trained, skipped, seconds)


def collect_runs(preset: DynamicsPreset, out: Path) -> list[dict]:
    """Every finished or partial run's per-epoch series (accuracies in percent)."""
    return [collect_run(out / "runs" / spec.name, spec) for spec in preset.runs]


def collect_run(run_dir: Path, spec: RunSpec) -> dict:
    """One run's per-epoch series from its ``metrics.jsonl`` (accuracies in percent); ``finished``
    when its ``summary.json`` exists (the run's last act)."""
    rows = [r for r in read_jsonl(run_dir / "metrics.jsonl") if "robust_acc" in r]
    epochs = [{"epoch": r["epoch"], "lr": r.get("lr"), "train_loss": r.get("train_loss"),
               "clean_acc": 100 * r["clean_acc"], "robust_acc": 100 * r["robust_acc"],
               "cas": r.get("cas"), "clean_cas": r.get("clean_cas"),
               "normalized_cas": r.get("normalized_cas")} for r in rows]
    return {"name": spec.name, "recipe": spec.recipe, "eps": spec.eps, "teacher": spec.teacher,
            "finished": (run_dir / "summary.json").is_file(), "epochs": epochs}


def write_outputs(preset: DynamicsPreset, out: Path, runs: list[dict]) -> None:
    from ..figures.dynamics import plot_dynamics
    from .tables import dynamics_table

    atomic_write_json(out / "dynamics.json", {"preset": preset.name, "description": preset.description,
                                              "seed": preset.base.get("seed"), "runs": runs})
    trained = [r for r in runs if r["epochs"]]  # runs not started yet get no empty panel
    if trained:
        plot_dynamics(trained, out / "dynamics.png", title=f"Training dynamics ({preset.name} preset)")
    atomic_write_text(out / "table.md", dynamics_table(runs, preset.name))
    for name in preset.compare:
        _compare_best_and_last(out, name)


def _compare_best_and_last(out: Path, name: str) -> Path | None:
    """The attribution-matrix difference, best epoch minus last epoch, of one run."""
    from ..figures import plot_matrix_difference

    run_dir = out / "runs" / name
    summary = run_dir / "summary.json"
    if not summary.is_file():
        return None
    info = json.loads(summary.read_text(encoding="utf-8"))
    best, last = info.get("best_epoch"), info.get("epochs")
    paths = [run_dir / "scores" / f"epoch_{e:03d}.json" for e in (best, last)]
    if best is None or not all(p.is_file() for p in paths):
        return None
    a, b = (json.loads(p.read_text(encoding="utf-8")) for p in paths)
    return plot_matrix_difference(a["matrix"], b["matrix"], a["class_names"],
                                  out / f"attribution_matrix_diff_{name}.png",
                                  title=f"{name}: best epoch {best} − last epoch {last}")
