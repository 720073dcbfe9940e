"""The model-source registry: ``<prefix>:<rest>`` strings turned into a checked FeatureClassifier.

One factory per prefix (:func:`register_source`); :func:`create_model_source` resolves a string
with :class:`SourceOptions`, loads ``checkpoint`` (any source) through the one checkpoint
normaliser, and checks the model contract on a probe batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace

import torch

from ...core.datasets import KNOWN_DATASETS, DatasetInfo
from ...core.errors import RBCrossclassError
from ...core.registry import Registry
from ...core.threat import check_threat_model
from ..checkpoint import load_into, read_state_dict
from ..feature_classifier import FeatureClassifier, ModelContractError, check_contract


class ModelSourceError(RBCrossclassError, ValueError):
    """A model source string cannot be resolved; the message says why and what to do."""


@dataclass(frozen=True)
class SourceOptions:
    """Options shared by all sources (CLI flags map onto these). Sizes are positive integers:
    ``num_classes`` K, ``in_chans`` C and ``img_size`` H = W of the inputs."""

    num_classes: int = 10
    in_chans: int = 3
    img_size: int = 32
    dataset: str | None = "cifar10"  # known dataset name: normalization statistics, robustbench board
    threat_model: str = "Linf"
    cifar_stem: bool | None = None  # None: adapt when img_size <= 64
    normalize: bool = True  # timm models get the dataset's mean/std as a first layer
    pretrained: bool = False
    model_dir: str = "./models"
    checkpoint: str | None = None
    head_name: str | None = None  # force a specific nn.Linear as the head
    seed: int = 0  # the run's seed: weights a source initialises (no checkpoint) are drawn from it
    extra: dict = field(default_factory=dict)  # passed to timm.create_model / the py callable

    def __post_init__(self) -> None:
        for name in ("num_classes", "in_chans", "img_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelSourceError(f"model option {name} must be a positive integer, got {value!r}")
        try:
            check_threat_model(self.threat_model)
        except RBCrossclassError as err:
            raise ModelSourceError(str(err)) from err

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.in_chans, self.img_size, self.img_size)

    @classmethod
    def for_data(cls, info: DatasetInfo, **fields: object) -> SourceOptions:
        """The options of a model for the data ``info`` describes: ``num_classes`` K = the data's,
        ``in_chans`` C and ``img_size`` H from ``info.shape`` ``[C,H,W]``, ``dataset`` its name when
        it is a known dataset (normalization statistics, robustbench board), else ``None``; any
        field given in ``fields`` wins (e.g. ``threat_model``, ``checkpoint``, a ``num_classes``
        the user set). The one place where dataset facts become model options. Raises
        :class:`ModelSourceError` as the constructor does."""
        derived = {"num_classes": info.num_classes, "in_chans": info.shape[0], "img_size": info.shape[1],
                   "dataset": info.name if info.name in KNOWN_DATASETS else None}
        return cls(**{**derived, **fields})


SourceFactory = Callable[[str, SourceOptions], FeatureClassifier]
SOURCES: Registry[SourceFactory] = Registry(__package__, exclude=("registry",))
"""Every source module of this package registers its prefix on import (discovered on first use),
so a new source is one new module here, with no list to edit."""


def register_source(prefix: str) -> Callable[[SourceFactory], SourceFactory]:
    """Decorator registering a factory for ``<prefix>:<rest>`` strings."""
    return SOURCES.register(prefix)


def available_sources() -> list[str]:
    """Registered prefixes (``py``, ``robustbench``, ``timm``, ``zoo`` and any registered since)."""
    return sorted(SOURCES.discover())


def create_model_source(spec: str, options: SourceOptions | None = None, *,
                        check: bool = True, **overrides) -> FeatureClassifier:
    """Build a :class:`FeatureClassifier` from a source string; checks the model contract.

    ``overrides`` set :class:`SourceOptions` fields. The returned model is in eval mode on CPU;
    ``model.meta`` records the source, the checkpoint and whether the model is randomized.
    The source is built under a private RNG seeded with ``options.seed`` (the caller's global RNG
    is left as it was), so an untrained model is the same network for the same seed.
    """
    known = {f.name for f in fields(SourceOptions)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ModelSourceError(f"unknown model source option(s) {unknown}; known: {sorted(known)}")
    opts = replace(options or SourceOptions(), **overrides)
    prefix, sep, rest = str(spec).partition(":")
    if not sep or not rest:
        raise ModelSourceError(
            f"model source {str(spec)[:100]!r} must look like timm:<name>, robustbench:<Name>, zoo:<Name> "
            "or py:<module>:<callable>"
        )
    factory = SOURCES.get(prefix)
    if factory is None:
        raise ModelSourceError(f"unknown model source {prefix!r} in {spec[:100]!r}; "
                               f"known: {available_sources()}")
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(opts.seed))
            model = factory(rest, opts)
    except ModelContractError as err:
        raise ModelContractError(f"{spec[:200]}: {err}", reason=err.reason) from err
    if opts.checkpoint:
        load_into(model, read_state_dict(opts.checkpoint), source=str(opts.checkpoint))
        model.meta["checkpoint"] = str(opts.checkpoint)
    model.meta.setdefault("source", spec)
    model.eval()
    if check:
        shape = tuple(model.meta.get("input_shape", opts.input_shape))
        probe = torch.rand(2, *shape, generator=torch.Generator().manual_seed(0))
        try:
            check_contract(model, probe)
        except ModelContractError as err:
            raise ModelContractError(f"{spec[:200]}: {err}", reason=err.reason) from err
    return model
