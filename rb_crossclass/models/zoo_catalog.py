"""The model zoo's catalog: one YAML file per entry, checked against a JSON Schema, and its weights.

Layout: ``<zoo>/<dataset>/<threat_model>/<Name>.yaml`` (RobustBench's model-ID rule: the file name
is the model's name), with the weights and the evaluated card beside it::

    name: RBXC2025Cpu_PGDAT          # must equal the file name
    dataset: cifar10
    threat_model: Linf
    eps: 8/255
    architecture: timm:resnet10t     # a model source string (rb_crossclass.models)
    model: {cifar_stem: null, extra: {}, num_classes: 10, input_shape: [3, 32, 32]}   # optional
    recipe: {name: pgd_at, params: {...}}
    config: {...}                    # the resolved training config (optional)
    checkpoint:
      path: RBXC2025Cpu_PGDAT.safetensors   # relative to the YAML; or an absolute path
      url: null                             # used when the file is not there (downloaded once)
      sha256: <64 hex digits>               # verified every time the weights are loaded
    card: RBXC2025Cpu_PGDAT.json            # beside the YAML

The schema ships as ``rb_crossclass/schemas/zoo_entry.schema.json``. The zoo root is, in order:
the ``root`` argument, ``$RB_CROSSCLASS_ZOO``, ``./model_zoo`` when it exists, then the zoo that
ships inside the package (``rb_crossclass/model_zoo``, or a source checkout's ``model_zoo/``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..core.datasets import known_dataset
from ..core.errors import RBCrossclassError
from ..core.yaml_limits import YAMLLimitError, load_yaml
from .checkpoint import CheckpointError, download_checkpoint, sha256_file

ZOO_ENV = "RB_CROSSCLASS_ZOO"
CACHE_ENV = "RB_CROSSCLASS_CACHE"
SCHEMA_RESOURCE = "schemas/zoo_entry.schema.json"


class ZooError(RBCrossclassError, ValueError):
    """A zoo entry is missing or malformed; the message names the file and the key."""


class ZooChecksumError(ZooError):
    """A zoo checkpoint does not match the sha256 recorded in its YAML (tampered or corrupt)."""


@dataclass
class ZooEntry:
    """One zoo model, as described by its YAML file (paths resolved against the YAML's folder)."""

    name: str
    dataset: str
    threat_model: str
    architecture: str
    sha256: str
    yaml_path: Path
    checkpoint_path: Path | None
    checkpoint_url: str | None
    card_path: Path
    eps: str | None = None
    num_classes: int = 10
    input_shape: tuple[int, int, int] = (3, 32, 32)
    cifar_stem: bool | None = None
    extra: dict = field(default_factory=dict)
    recipe: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)

    @property
    def timm_name(self) -> str:
        from ..compat import robustbench_timm_name

        return robustbench_timm_name(self.name, self.dataset, self.threat_model)

    def summary(self) -> dict:
        return {
            "name": self.name, "dataset": self.dataset, "threat_model": self.threat_model,
            "eps": self.eps, "architecture": self.architecture, "recipe": self.recipe.get("name"),
            "checkpoint": str(self.checkpoint_path) if self.checkpoint_path else self.checkpoint_url,
            "sha256": self.sha256, "card": str(self.card_path), "timm_name": self.timm_name,
        }


# --------------------------------------------------------------------------- reading entries
def packaged_zoo() -> Path | None:
    """The zoo shipped with the installed package (or a source checkout's ``model_zoo/``)."""
    inside = Path(str(resources.files("rb_crossclass"))) / "model_zoo"
    checkout = Path(__file__).resolve().parent.parent.parent / "model_zoo"
    for cand in (inside, checkout):
        if cand.is_dir():
            return cand
    return None


def zoo_root(root: str | os.PathLike | None = None) -> Path:
    """The zoo folder (see the module docstring for the search order)."""
    if root is not None or os.environ.get(ZOO_ENV):
        chosen = Path(root if root is not None else os.environ[ZOO_ENV])
        if not chosen.is_dir():
            raise ZooError(f"model zoo folder not found: {chosen}")
        return chosen
    for cand in (Path.cwd() / "model_zoo", packaged_zoo()):
        if cand is not None and cand.is_dir():
            return cand
    raise ZooError("no model zoo folder found (./model_zoo, or the packaged zoo); "
                   f"pass --root or set {ZOO_ENV}")


@lru_cache(maxsize=1)
def entry_schema() -> dict:
    """The zoo entry JSON Schema shipped with the package."""
    return json.loads(resources.files("rb_crossclass").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validator():
    import jsonschema

    cls = jsonschema.validators.validator_for(entry_schema())
    return cls(entry_schema())


def _schema_error(data: Any, path: Path) -> None:
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        return
    err = errors[0]
    where = ".".join(str(p) for p in err.absolute_path) or "top level"
    shown = repr(err.instance) if len(repr(err.instance)) <= 80 else repr(err.instance)[:75] + "..."
    described = isinstance(err.schema, dict) and "description" in err.schema
    hint = f": {err.schema['description']}" if described else ""
    if err.validator == "required":
        missing = [k for k in err.validator_value if k not in err.instance]
        problem = f"key {'.'.join([*map(str, err.absolute_path), missing[0]])!r} is missing"
        raise ZooError(f"{path}: {problem}")
    if err.validator == "type":
        problem = f"{shown} must be of type {err.validator_value}"
    elif err.validator in ("pattern", "enum", "minimum", "maximum", "minItems", "maxItems", "maxLength"):
        problem = f"{shown} is not allowed here ({err.validator} {str(err.validator_value)[:80]})"
    else:
        problem = err.message[:200]
    raise ZooError(f"{path}: key {where!r}: {problem}{hint}")


def load_entry(path: str | os.PathLike) -> ZooEntry:
    """Parse and check one zoo YAML file (schema, name = file name, folder = dataset/threat model)."""
    path = Path(path)
    try:
        data = load_yaml(path.read_text(encoding="utf-8"), str(path))
    except FileNotFoundError as err:
        raise ZooError(f"zoo entry not found: {path}") from err
    except YAMLLimitError as err:  # not YAML, or expanding beyond the bounds (an alias bomb)
        raise ZooError(str(err)) from err
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as err:
        raise ZooError(f"{path}: not readable YAML ({str(err)[:200]})") from err
    if not isinstance(data, dict):
        raise ZooError(f"{path}: the top level must be a mapping")
    data = {k: v for k, v in data.items() if v is not None}  # `key: ~` counts as missing
    _schema_error(data, path)
    name, dataset, threat_model = data["name"], data["dataset"], data["threat_model"]
    if name != path.stem:
        raise ZooError(f"{path}: key 'name' is {name!r} but the file is {path.name} (they must agree)")
    if path.parent.name != threat_model or path.parent.parent.name != dataset:
        raise ZooError(f"{path}: dataset/threat_model {dataset}/{threat_model} do not match its folder "
                       f"{path.parent.parent.name}/{path.parent.name}")
    model = data.get("model") or {}
    facts = known_dataset(dataset)
    shape = model.get("input_shape") or (facts.shape if facts else (3, 32, 32))
    ckpt = data["checkpoint"]
    return ZooEntry(
        name=name, dataset=dataset, threat_model=threat_model, architecture=data["architecture"],
        sha256=ckpt["sha256"], yaml_path=path,
        checkpoint_path=(path.parent / ckpt["path"]) if ckpt.get("path") else None,
        checkpoint_url=ckpt.get("url"), card_path=path.parent / data["card"],
        eps=data.get("eps"),
        num_classes=int(model.get("num_classes") or (facts.num_classes if facts else 10)),
        input_shape=tuple(int(s) for s in shape), cifar_stem=model.get("cifar_stem"),
        extra=dict(model.get("extra") or {}), recipe=dict(data.get("recipe") or {}),
        config=dict(data.get("config") or {}), training=dict(data.get("training") or {}),
    )


def list_entries(root: str | os.PathLike | None = None, dataset: str | None = None,
                 threat_model: str | None = None) -> list[ZooEntry]:
    """Every entry under the zoo root, sorted by (dataset, threat model, name)."""
    base = zoo_root(root)
    paths = sorted(base.glob("*/*/*.yaml"), key=lambda p: (p.parent.parent.name, p.parent.name, p.name))
    entries = [load_entry(p) for p in paths]
    return [e for e in entries if (dataset is None or e.dataset == dataset)
            and (threat_model is None or e.threat_model == threat_model)]


def find_entry(name: str, root: str | os.PathLike | None = None, dataset: str | None = None,
               threat_model: str | None = None) -> ZooEntry:
    """The entry called ``name`` (narrowed by dataset / threat model when given)."""
    entries = list_entries(root)
    matches = [e for e in entries if e.name == name and (dataset is None or e.dataset == dataset)
               and (threat_model is None or e.threat_model == threat_model)]
    if not matches:
        where = "/".join(x for x in (dataset, threat_model) if x)
        shown = name if len(name) <= 100 else name[:97] + "..."
        raise ZooError(f"no zoo entry {shown!r}{' for ' + where if where else ''} in {zoo_root(root)}; "
                       f"entries: {', '.join(e.name for e in entries) or 'none'}")
    if len(matches) > 1:
        raise ZooError(f"zoo entry {name!r} exists for several datasets/threat models: "
                       f"{[str(e.yaml_path) for e in matches]}; pass dataset and threat model")
    return matches[0]


# --------------------------------------------------------------------------- weights
def _cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "rb_crossclass")) / "zoo"


def checkpoint_file(entry: ZooEntry, download: bool = True) -> Path:
    """The verified checkpoint file of ``entry``: its local path, else the URL's cached download.

    Raises :class:`ZooChecksumError` when the file's sha256 differs from the YAML's.
    """
    if entry.checkpoint_path is not None and entry.checkpoint_path.is_file():
        path = entry.checkpoint_path
    elif entry.checkpoint_url:
        suffix = Path(entry.checkpoint_url.split("?")[0]).suffix or ".safetensors"
        path = _cache_dir() / f"{entry.name}-{entry.sha256[:12]}{suffix}"
        if not path.is_file():
            if not download:
                raise ZooError(f"zoo entry {entry.name}: {path} is not downloaded yet")
            _download(entry.checkpoint_url, path, entry)
    else:
        raise ZooError(f"{entry.yaml_path}: checkpoint {entry.checkpoint_path} not found (and no url)")
    actual = sha256_file(path)
    if actual != entry.sha256:
        raise ZooChecksumError(
            f"zoo entry {entry.name}: checkpoint {path} has sha256 {actual}, but {entry.yaml_path.name} "
            f"records {entry.sha256}: the file was modified or is corrupt; refusing to load it"
        )
    return path


def _download(url: str, path: Path, entry: ZooEntry) -> None:
    """``url`` into ``path`` (models.checkpoint.download_checkpoint; the sha256 is checked by the
    caller, which names the entry's YAML); a failed download is a :class:`ZooError`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        download_checkpoint(url, path, progress=True)
    except CheckpointError as err:
        raise ZooError(f"zoo entry {entry.name}: could not download {url} ({err}); place the file at "
                       f"{entry.checkpoint_path or path} and retry") from err
