"""Typed training configuration, resolved from YAML (a file or a packaged preset name) plus
``key=value`` overrides with dotted keys (``optim.lr=0.05``, ``recipe.params.beta=3``).

Strings ``${shared}`` in data specs expand to the ``../shared/data`` folder next to the checkout
(:func:`rb_crossclass.data.shared_data_dir`), so presets can name the partial CIFAR-10 portably.

The threat model of the held-out attack and of a recipe's inner attack is ``threat_model``
(``Linf`` or ``L2``: RobustBench's term, the CLI's ``--threat-model``). The old key ``norm``
(``eval.norm``, ``recipe.params.norm``) is still read, with a one-line ``warning:`` on stderr.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import sys
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import RBCrossclassError
from ..core.threat import PAPER_PGD_STEPS, check_eps, check_norm, parse_eps
from ..core.yaml_limits import YAMLLimitError, load_yaml

log = logging.getLogger(__name__)


class ConfigError(RBCrossclassError, ValueError):
    """A training config is invalid; the message names the file/key and the accepted values."""


@dataclass
class ModelConfig:
    source: str = "timm:resnet18"  # any model source (timm:<name>, py:<module>:<callable>, ...)
    checkpoint: str | None = None  # initial weights (safetensors or weights_only torch file)
    cifar_stem: bool | None = None  # None: adapt ResNet/ViT stems when img_size <= 64
    extra: dict = field(default_factory=dict)  # keyword arguments for timm.create_model


@dataclass
class DataConfig:
    train: str = "cifar10"  # dataset spec: cifar10 | cifar100 | mnist | npz:<path>
    dataset_name: str | None = None  # what npz files hold (cifar10 ...): class names, K, normalization
    train_split: str = "train"
    n_train: int | None = None  # first N training points (None: all)
    eval: str = "cifar10"  # held-out evaluation set
    eval_split: str = "test"
    n_eval: int | None = 1000  # first N held-out points
    data_dir: str | None = None
    augment: bool = True  # random crop (4 px, reflect) + flip for 32x32 images
    num_workers: int = 0


@dataclass
class RecipeConfig:
    name: str = "pgd_at"
    params: dict = field(default_factory=dict)  # keyword arguments of create_recipe


@dataclass
class OptimConfig:
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    batch_size: int = 128  # global batch (split evenly over DDP ranks)
    epochs: int = 200
    schedule: str = "multistep"  # multistep | cosine | constant (stepped once per epoch)
    milestones: list = field(default_factory=lambda: [100, 150])
    gamma: float = 0.1
    grad_clip: float | None = None


@dataclass
class HeldOutConfig:
    every: int = 1  # evaluate every k epochs (and always after the last one)
    eps: str = "8/255"
    steps: int = PAPER_PGD_STEPS  # PGD-20
    step_size: str | None = None  # None: eps/4 (the paper's CAS protocol)
    threat_model: str = "Linf"  # Linf | L2 (the YAML key was `norm` before; still read, with a warning)
    batch_size: int = 256
    cas: bool = True  # cross-class scores via rb_crossclass.scoring
    intervals: bool = False  # also a bootstrap 95 % interval of CAS per epoch (scores/epoch_XXX.json)


@dataclass
class CheckpointConfig:
    every: int = 0  # also keep epoch_XXX checkpoints every k epochs (0: only last and best)


@dataclass
class RuntimeConfig:
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    bf16: bool = False  # bf16 autocast (a GPU or CPU with native bf16; refused elsewhere)
    channels_last: bool = False  # NHWC memory format (faster convolutions on GPU and on CPU)
    compile: bool = False  # torch.compile the training model
    num_threads: int | None = None  # torch intra-op threads (CPU); None: OMP_NUM_THREADS / SLURM / affinity
    progress: bool = True
    log_every: int = 50  # log the (rank-averaged) step loss every k steps to train_log.jsonl


@dataclass
class TrainConfig:
    name: str = "run"
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    recipe: RecipeConfig = field(default_factory=RecipeConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    eval: HeldOutConfig = field(default_factory=HeldOutConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def list_presets() -> list[str]:
    """Names of the presets shipped in ``rb_crossclass/configs``."""
    folder = resources.files("rb_crossclass") / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def presets_needing_shared_data() -> list[str]:
    """Presets whose data paths use ``${shared}`` (the project's shared data folder, present beside
    a checkout, not in a plain ``pip install``): ``train --help`` names them."""
    folder = resources.files("rb_crossclass") / "configs"
    return [n for n in list_presets() if "${shared}" in (folder / f"{n}.yaml").read_text(encoding="utf-8")]


def _read_yaml(path_or_preset: str | os.PathLike) -> tuple[dict, str]:
    path = Path(path_or_preset)
    if not path.is_file():
        name = str(path_or_preset)
        name = name[:-5] if name.endswith(".yaml") else name
        candidate = resources.files("rb_crossclass") / "configs" / f"{name}.yaml"
        if os.sep in name or "/" in name or not candidate.is_file():
            raise ConfigError(f"config {path_or_preset!r} is neither a file nor a preset; presets: "
                              f"{', '.join(list_presets())}")
        text, source = candidate.read_text(encoding="utf-8"), f"preset {name}"
    else:
        text, source = path.read_text(encoding="utf-8"), str(path)
    try:
        data = load_yaml(text, source) or {}
    except YAMLLimitError as err:  # not YAML, or expanding beyond the bounds (an alias bomb)
        raise ConfigError(str(err)) from err
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    return data, source


def _set_dotted(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {p!r} is not a section")
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """``'optim.lr=0.05'`` → ``('optim.lr', 0.05)`` (the value is parsed as YAML)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects key=value, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def load_config(path_or_preset: str | os.PathLike, overrides: list[str] | dict | None = None, *,
                data_dir: str | os.PathLike | None = None) -> TrainConfig:
    """Resolve a YAML file (or preset name) and overrides into a validated :class:`TrainConfig`.
    ``data_dir`` (``train --data-dir``), when given, sets ``data.data_dir`` after the overrides."""
    data, source = _read_yaml(path_or_preset)
    items = list(overrides.items() if isinstance(overrides, dict)
                 else (parse_override(o) for o in overrides or []))
    if data_dir is not None:
        items.append(("data.data_dir", os.fspath(data_dir)))
    before = dict(data.get("model") or {}) if isinstance(data.get("model"), dict) else {}
    for key, value in items:
        _set_dotted(data, key, value)
    _check_source_change(before, dict(items), source)
    return config_from_dict(data, source)


#: Keys of ``model`` that describe the network of ``model.source`` and mean nothing for another.
SOURCE_BOUND_KEYS = ("extra", "checkpoint")


def _check_source_change(before: dict, overrides: dict, source: str) -> None:
    """Refuse ``--set model.source=...`` that keeps the file's ``model.extra`` / ``model.checkpoint``:
    they belong to the old source (a preset's narrow-ResNet widths would silently shape the new
    network). Setting them too (``model.extra={}``, ``model.checkpoint=null``) says what is meant."""
    new = overrides.get("model.source")
    old = before.get("source")
    if new is None or old is None or str(new) == str(old):
        return
    stale = [k for k in SOURCE_BOUND_KEYS if before.get(k) and f"model.{k}" not in overrides]
    if stale:
        kept = ", ".join(f"model.{k}={before[k]!r}" for k in stale)
        fix = " ".join("--set model.extra={}" if k == "extra" else "--set model.checkpoint=null"
                       for k in stale)
        raise ConfigError(f"{source}: --set model.source={new} replaces {old}, but {kept} belongs to {old} "
                          f"and would shape or load the new network; add {fix} (or the new model's own "
                          "values)")


# Keys renamed for one name across CLI, YAML and JSON: old dotted key -> new key in the same mapping.
RENAMED_KEYS: dict[str, str] = {"eval.norm": "threat_model", "recipe.params.norm": "threat_model"}


def _renamed(data: dict, prefix: str, source: str) -> dict:
    """``data`` (the mapping at dotted ``prefix``) with deprecated keys of :data:`RENAMED_KEYS`
    renamed; each prints one ``warning:`` line on stderr. Both spellings at once raise
    :class:`ConfigError`."""
    for old, new in RENAMED_KEYS.items():
        where, _, key = old.rpartition(".")
        if f"{where}." != prefix or not isinstance(data, dict) or key not in data:
            continue
        if new in data:
            raise ConfigError(f"{source}: {old} and {where}.{new} both given; keep {where}.{new} "
                              f"({old} is its deprecated name)")
        print(f"warning: {source}: {old} is deprecated; use {where}.{new} (same values)", file=sys.stderr)
        data = {(new if k == key else k): v for k, v in data.items()}
    return data


def config_from_dict(data: dict, source: str = "<config>") -> TrainConfig:
    """Strict conversion: unknown keys and wrongly typed values raise :class:`ConfigError`; the
    recipe, the model source's prefix and the data paths are checked too (:func:`check_config`),
    so a config is whole before anything is printed, read or built. Deprecated keys
    (:data:`RENAMED_KEYS`) are read under their new name, with a warning."""
    cfg = _build(TrainConfig, data, source, "")
    _validate(cfg, source)
    check_config(cfg, source)
    return cfg


def check_config(cfg: TrainConfig, source: str = "<config>") -> None:
    """What :func:`_validate` cannot see from the numbers alone: the recipe and its parameters exist
    (:func:`~rb_crossclass.recipes.create_recipe`, which builds no model), the model source has a
    known prefix, and data paths using ``${shared}`` can be resolved (a preset that needs the
    project's shared data says so here, not after a model is built)."""
    from ..models import available_sources
    from ..recipes import create_recipe

    try:
        create_recipe(cfg.recipe.name, **cfg.recipe.params)
    except RBCrossclassError as err:
        raise ConfigError(f"{source}: recipe: {err}") from err
    prefix, sep, rest = cfg.model.source.partition(":")
    if not sep or not rest or prefix not in available_sources():
        raise ConfigError(f"{source}: model.source {cfg.model.source[:100]!r} must be <prefix>:<name> with a "
                          f"prefix among {available_sources()}")
    for key in ("train", "eval"):
        try:
            expand_data_spec(getattr(cfg.data, key))
        except ConfigError as err:
            raise ConfigError(f"{source}: data.{key}: {err}") from err


def _build(cls, data: Any, source: str, prefix: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'config'} must be a mapping, got {data!r}")
    data = _renamed(data, prefix, source)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {[prefix + u for u in unknown]}; known in "
                          f"{prefix.rstrip('.') or 'top level'}: {sorted(names)}")
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value or {}, source, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, hint, source, prefix + name)
    return cls(**kwargs)


def _coerce(value: Any, hint, source: str, key: str):
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, source, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{source}: {key}: bad value {value!r}")
    base = origin or hint
    if base is bool:
        if isinstance(value, bool):
            return value
    elif base is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif base is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 1e6 (no dot) as a string: convert, and say so
            try:
                number = float(value)
            except ValueError:
                pass
            else:
                log.info("%s: %s=%r read as the number %g", source, key, value, number)
                return number
    elif base is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    elif base is list:
        if isinstance(value, (list, tuple)):
            return list(value)
    elif base is dict:
        if isinstance(value, dict):
            return dict(_renamed(value, key + ".", source))
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:75] + "..."
    raise ConfigError(f"{source}: {key} must be {getattr(base, '__name__', base)}, got {shown}")


def _validate(cfg: TrainConfig, source: str) -> None:
    o = cfg.optim
    if o.schedule not in ("multistep", "cosine", "constant"):
        raise ConfigError(f"{source}: optim.schedule must be multistep, cosine or constant, "
                          f"got {o.schedule!r}")
    for key, value in (("optim.epochs", o.epochs), ("optim.batch_size", o.batch_size),
                       ("eval.every", cfg.eval.every), ("eval.batch_size", cfg.eval.batch_size)):
        if value < 1:
            raise ConfigError(f"{source}: {key} must be >= 1, got {value}")
    for key, value in (("optim.lr", o.lr), ("optim.gamma", o.gamma)):
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{source}: {key} must be a finite number > 0, got {value}")
    for key, value in (("optim.momentum", o.momentum), ("optim.weight_decay", o.weight_decay)):
        if not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"{source}: {key} must be a finite number >= 0, got {value}")
    if any(not isinstance(m, int) or isinstance(m, bool) or m < 1 for m in o.milestones):
        raise ConfigError(f"{source}: optim.milestones must be positive epoch numbers, got {o.milestones}")
    for key, value in (("data.n_train", cfg.data.n_train), ("data.n_eval", cfg.data.n_eval),
                       ("runtime.num_threads", cfg.runtime.num_threads)):
        if value is not None and value < 1:
            raise ConfigError(f"{source}: {key} must be >= 1 (or null), got {value}")
    if cfg.eval.steps < 0 or cfg.checkpoint.every < 0 or cfg.runtime.log_every < 0:
        raise ConfigError(f"{source}: eval.steps, checkpoint.every and runtime.log_every must be >= 0")
    try:
        check_norm(cfg.eval.threat_model)
        check_eps(parse_eps(cfg.eval.eps), cfg.eval.threat_model)
        if cfg.eval.step_size is not None:
            parse_eps(cfg.eval.step_size)
    except RBCrossclassError as err:
        raise ConfigError(f"{source}: eval: {err}") from err


def expand_data_spec(spec: str) -> str:
    """Replace ``${shared}`` with the shared data folder (clear error when it is absent)."""
    if "${shared}" not in spec:
        return spec
    from ..data import shared_data_dir

    shared = shared_data_dir()
    if shared is None:
        raise ConfigError(f"{spec!r} is in the project's shared data folder (${{shared}}: ../shared/data "
                          "beside a checkout of rb-crossclass), which is not here: set RB_CROSSCLASS_SHARED "
                          "to the folder holding data/, or point data.train / data.eval at your own data "
                          "(e.g. --set data.train=cifar10 --set data.eval=cifar10)")
    return spec.replace("${shared}", str(shared))


def config_to_yaml(cfg: TrainConfig) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def train_summary(cfg: TrainConfig, result: Any, out_dir: str | os.PathLike) -> str:
    """What ``rb-crossclass train`` prints after a run: recipe, model source and parameter count,
    epochs, time and throughput; the best epoch's held-out accuracies and CAS (when evaluated);
    the files written to ``out_dir``. ``result`` is the run's :class:`~rb_crossclass.train.TrainResult`."""
    params = f" ({result.parameters / 1e6:.2f}M parameters)" if result.parameters else ""
    lines = [f"run {cfg.name}: {cfg.recipe.name} on {cfg.model.source}{params}, {result.epochs} epochs "
             f"in {result.seconds:.0f} s ({result.train_images_per_second:.0f} training images/s, "
             f"{result.world_size} rank(s))"]
    if result.best_epoch is not None:
        cas = f", CAS {result.best_cas:.2f}" if result.best_cas is not None else ""
        lines.append(f"best epoch {result.best_epoch}: clean {100 * result.best_clean_acc:.2f}%, "
                     f"{result.final.get('attack', 'PGD')} {100 * result.best_robust_acc:.2f}%{cas}")
    card = ", card.json" if (Path(out_dir) / "card.json").is_file() else ""
    lines.append(f"outputs in {out_dir}: metrics.jsonl, curves.png, checkpoints/{{last,best}}, "
                 f"summary.json{card}")
    return "\n".join(lines)
