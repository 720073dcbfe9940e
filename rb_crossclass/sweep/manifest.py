"""Sweep manifests: a YAML list of published models that are not in RobustBench.

```yaml
dataset: mnist            # or cifar10, cifar100, imagenet
threat_model: Linf        # or L2
eps: "0.3"                # "8/255" style accepted too
models:
  - name: Wong2020Fast_PGD_MNIST          # card id / file name
    source: py:archs.py:fast_adversarial_mnist
    checkpoint: ../shared/checkpoints/mnist/fast_adversarial_pgd_madry.pth
    sha256: "<hex>"                      # optional; checked when present
    card: {name: "<paper title>", link: "<url>", authors: "...", venue: "ICLR 2020",
           architecture: "...", clean_acc: "98.99"}   # RobustBench card fields
```

The shipped JSON Schema (``rb_crossclass/schemas/manifest.schema.json``) is checked first; an
error names the file and the field as a JSON path. Relative paths (``checkpoint``, and the file
of a ``py:<file.py>:<callable>`` source) are relative to the manifest's folder and become
absolute. ``url`` (with ``sha256``) is the checkpoint's original download address, used when
``checkpoint`` is absent or not on disk. ``extra_eps`` (top level) lists further radii for the
PGD-20 protocol (e.g. ``['8/255']`` beside a 2/255 board). Optional per model: ``head`` (the head
``nn.Linear`` by name) and ``kwargs`` (extra arguments of the builder).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from urllib.parse import urlparse

from ..core.names import check_model_id
from ..core.threat import ThreatModelError, check_attack_eps, check_eps, default_eps, parse_eps
from ..core.yaml_limits import YAMLLimitError, YAMLLimits, load_yaml
from .jobs import ModelJob, SweepError

SCHEMA_RESOURCE = "schemas/manifest.schema.json"
PERCENT_FIELDS = ("reported", "clean_acc", "autoattack_acc")
# A manifest lists models and their card fields: a few thousand nodes for a whole board. The bounds
# leave two orders of magnitude and refuse alias bombs before any model is scored.
MANIFEST_LIMITS = YAMLLimits(max_text_chars=4 * 1024 * 1024, max_nodes=200_000,
                             max_scalar_chars=4 * 1024 * 1024, max_string_chars=100_000, max_depth=32)


class ManifestError(SweepError):
    """A manifest that cannot be read or breaks the manifest schema; names the file and field."""


@dataclass(frozen=True)
class Manifest:
    """A read manifest: the board (``dataset``, ``threat_model``, ``eps``) and its models."""

    path: Path
    dataset: str
    threat_model: str
    eps: float
    jobs: tuple[ModelJob, ...]
    extra_eps: tuple[float, ...] = ()


@lru_cache(maxsize=1)
def manifest_schema() -> dict:
    """The manifest JSON Schema (draft 2020-12) shipped with the package."""
    return json.loads(resources.files("rb_crossclass").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8"))


def manifest_schema_path() -> Path:
    """Filesystem path of the shipped manifest schema."""
    return Path(str(resources.files("rb_crossclass").joinpath(SCHEMA_RESOURCE)))


def _json_path(parts) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def validate_manifest(data: object, source: str) -> None:
    """Check ``data`` (a parsed manifest) against the schema; :class:`ManifestError` names the
    first problem's field as a JSON path."""
    import jsonschema

    cls = jsonschema.validators.validator_for(manifest_schema())
    error = jsonschema.exceptions.best_match(cls(manifest_schema()).iter_errors(data))
    if error is None:
        return
    path = list(error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        raise ManifestError(f"manifest {source}: field {_json_path([*path, missing])}: missing required key")
    if error.validator == "additionalProperties":
        extra = error.message.split("'")[1] if "'" in error.message else "?"
        raise ManifestError(f"manifest {source}: field {_json_path([*path, extra])}: unknown key "
                            "(extension keys must start with 'x_')")
    shown = repr(error.instance)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    if error.validator in ("pattern", "anyOf", "enum", "type", "minimum", "maximum", "minItems", "minLength",
                           "maxLength", "maxItems", "maxProperties"):
        what = error.schema.get("description") or error.message
        raise ManifestError(f"manifest {source}: field {_json_path(path)}: {shown} is not valid ({what})")
    raise ManifestError(f"manifest {source}: field {_json_path(path)}: {error.message[:300]}")


def load_manifest(path: str | os.PathLike) -> Manifest:
    """Read, validate and resolve a manifest file; :class:`ManifestError` on any problem."""
    path = Path(path)
    try:
        data = load_yaml(path.read_text(encoding="utf-8"), f"manifest {path}", MANIFEST_LIMITS)
    except FileNotFoundError:
        raise ManifestError(f"manifest {path} not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ManifestError(f"manifest {path} cannot be read ({err})") from err
    except YAMLLimitError as err:  # not YAML, or an alias bomb: refused before anything is built
        raise ManifestError(str(err)) from err
    validate_manifest(data, str(path))
    folder = path.resolve().parent
    threat_model = data["threat_model"]
    try:
        eps = check_attack_eps(check_eps(parse_eps(data["eps"]), threat_model)) \
            if data.get("eps") is not None else default_eps(threat_model)
    except ThreatModelError as err:
        raise ManifestError(f"manifest {path}: field $.eps: {err}") from err
    jobs: list[ModelJob] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(data["models"]):
        name = check_model_id(entry["name"], f"manifest {path}: field $.models[{i}].name")
        if name in seen:
            raise ManifestError(f"manifest {path}: field $.models[{i}].name: {name!r} is also "
                                f"model {seen[name]}; model IDs must be unique")
        seen[name] = i
        card = dict(entry.get("card") or {})
        for key in PERCENT_FIELDS:
            if isinstance(card.get(key), (int, float)) and not isinstance(card.get(key), bool):
                card[key] = f"{card[key]:.2f}"
        jobs.append(ModelJob(
            name=name, source=_resolve_source(entry["source"], folder),
            checkpoint=_resolve_checkpoint(entry.get("checkpoint"), folder),
            sha256=entry["sha256"].lower() if entry.get("sha256") else None, url=entry.get("url"),
            head=entry.get("head"), kwargs=dict(entry.get("kwargs") or {}), card=card,
        ))
    extra = []
    for i, value in enumerate(data.get("extra_eps") or []):
        try:
            extra.append(check_eps(parse_eps(value), threat_model))
        except ThreatModelError as err:
            raise ManifestError(f"manifest {path}: field $.extra_eps[{i}]: {err}") from err
    return Manifest(path=path, dataset=data["dataset"], threat_model=threat_model, eps=eps, jobs=tuple(jobs),
                    extra_eps=tuple(extra))


def _resolve_source(source: str, folder: Path) -> str:
    """``py:<file>.py:<callable>`` with the file made absolute (relative to the manifest)."""
    prefix, _, rest = source.partition(":")
    if prefix != "py":
        return source
    module, sep, attr = rest.rpartition(":")
    if sep and (module.endswith(".py") or "/" in module or os.sep in module):
        return f"py:{os.path.normpath(folder / module)}:{attr}"
    return source


def _resolve_checkpoint(checkpoint: str | None, folder: Path) -> str | None:
    if checkpoint is None or urlparse(checkpoint).scheme in ("http", "https"):
        return checkpoint
    return os.path.normpath(folder / os.path.expanduser(checkpoint))
