"""A model fitted to a dataset: its sizes taken from the dataset's facts, and the one rule for a
model whose class count differs from the data's (:func:`reconcile_classes`; ``score``,
``evaluate`` and the sweep's workers all apply it)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import torch

from ..core.datasets import DatasetInfo
from ..core.errors import RBCrossclassError
from .feature_classifier import FeatureClassifier
from .sources import SourceOptions, create_model_source

log = logging.getLogger(__name__)

__all__ = ["ModelSpec", "build_model_for_data", "prepare_for_device", "reconcile_classes"]


@dataclass(frozen=True)
class ModelSpec:
    """Which model to build, as a user names it (the CLI's model flags map onto these).

    ``source``: ``timm:<name>``, ``robustbench:<Name>``, ``zoo:<Name>`` or ``py:<module>:<callable>``;
    ``checkpoint``: a weights file; ``num_classes`` / ``img_size``: ``None`` = the dataset's;
    ``cifar_stem``: ``None`` = adapt timm's stem to inputs <= 64 px, ``False`` keeps ImageNet's;
    ``model_dir``: robustbench's checkpoint folder; ``head``: the name of the final ``nn.Linear``
    when it is not the last one; ``seed``: weights a source draws (an untrained ``timm:`` model);
    ``extra``: keyword arguments for ``timm.create_model`` / the py callable.
    """

    source: str
    checkpoint: str | None = None
    num_classes: int | None = None
    img_size: int | None = None
    cifar_stem: bool | None = None
    model_dir: str = "./models"
    head: str | None = None
    seed: int = 0
    extra: dict = field(default_factory=dict)

    @classmethod
    def of(cls, model: ModelSpec | str) -> ModelSpec:
        """``model`` as a :class:`ModelSpec`: a spec as it is, a source string (``"zoo:<Name>"``)
        as the spec of that source with every other field at its default. Raises
        :class:`TypeError` for anything else."""
        if isinstance(model, cls):
            return model
        if isinstance(model, str):
            return cls(source=model)
        raise TypeError("a model is a ModelSpec or a source string like 'zoo:<Name>', "
                        f"got {type(model).__name__}")

    @property
    def robustbench_name(self) -> str | None:
        """``Name`` of a ``robustbench:<Name>`` source, else ``None`` (it chooses ImageNet's
        preprocessing and the official card)."""
        return self.source.split(":", 1)[1] if self.source.startswith("robustbench:") else None

    def source_options(self, info: DatasetInfo, threat_model: str = "Linf") -> SourceOptions:
        """:class:`SourceOptions` for data described by ``info`` (``[C,H,W]`` = ``info.shape``):
        class count, channels and size default to the data's; raises
        :class:`~rb_crossclass.models.ModelSourceError` for non-positive sizes or an unknown
        threat model."""
        return SourceOptions.for_data(
            info,
            num_classes=self.num_classes or info.num_classes,
            img_size=self.img_size or info.shape[1],
            threat_model=threat_model,
            cifar_stem=self.cifar_stem,
            model_dir=self.model_dir,
            checkpoint=self.checkpoint,
            head_name=self.head,
            seed=int(self.seed or 0),
            extra=dict(self.extra),
        )


def build_model_for_data(spec: ModelSpec, info: DatasetInfo, threat_model: str = "Linf") -> FeatureClassifier:
    """The model of ``spec`` sized for the data of ``info`` (eval mode, on CPU, its contract
    checked); raises :class:`~rb_crossclass.models.ModelSourceError` /
    :class:`~rb_crossclass.models.ModelContractError` for a source that cannot be built."""
    return create_model_source(spec.source, spec.source_options(info, threat_model))


def reconcile_classes(model: FeatureClassifier, info: DatasetInfo, dataset: str) -> DatasetInfo:
    """The data's facts with the model's class count K, the one rule for both counts.

    Equal counts: ``info`` unchanged. A K only *inferred* from the labels (an ``npz:`` file
    without metadata; a partial file may lack the top classes) yields to a larger head: the facts
    are returned with the model's K and class names ``"0" .. "K-1"``, and a warning is logged.
    Any other difference raises :class:`~rb_crossclass.core.errors.RBCrossclassError` saying
    where each number came from (``dataset`` names the data in the message).

    The sweep's workers apply this same function; their data always declare K (a board's
    dataset, or an ``npz:`` file read as that dataset), so for them every difference is an error.
    """
    if model.num_classes == info.num_classes:
        return info
    if info.num_classes_inferred and model.num_classes > info.num_classes:
        log.warning("using the model's %d classes (its head) instead of %d inferred from the labels of %s",
                    model.num_classes, info.num_classes, dataset)
        names = tuple(str(i) for i in range(model.num_classes))
        return replace(info, num_classes=model.num_classes, class_names=names,
                       num_classes_source=f"the model's head {tuple(model.head.weight.shape)}",
                       num_classes_inferred=False)
    raise RBCrossclassError(
        f"the model has {model.num_classes} classes (its head {tuple(model.head.weight.shape)}) but "
        f"{dataset[:200]} has {info.num_classes} ({info.num_classes_source})"
    )


def prepare_for_device(model: FeatureClassifier, device: torch.device | str,
                       channels_last: bool = False) -> FeatureClassifier:
    """``model`` on ``device`` in eval mode, its 4-D weights in channels_last when asked
    (layout only: values are unchanged)."""
    model = model.to(device).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model
