"""Zoo entries in timm's registry under RobustBench's naming rule, so that
``robustbench.utils.load_model('<Name>', dataset=..., threat_model=...)`` returns them offline
(the weights come from the entry's checkpoint, checked against its sha256; ``load_model``'s
``model_dir`` is not used for zoo entries)."""

from __future__ import annotations

import os
import sys
import types
from typing import Any

from ..models import FeatureClassifier
from ..models.sources import build_zoo_model
from ..models.zoo_catalog import ZooEntry, ZooError, list_entries

_TIMM_MODULE = "rb_crossclass_zoo_registry"  # the module name timm files our entrypoints under


def register_timm(root: str | os.PathLike | None = None, dataset: str | None = None,
                  threat_model: str | None = None) -> list[str]:
    """Register zoo entries with timm under RobustBench's names; returns the timm names.

    ``timm.create_model(name, pretrained=True)`` (what ``robustbench.utils.load_model`` calls)
    then builds the entry with its verified checkpoint; ``pretrained=False`` gives the
    architecture with fresh weights. Registering again replaces the earlier registration.
    """
    import warnings

    from ..compat import import_timm

    register_model = import_timm().models.register_model

    module = sys.modules.get(_TIMM_MODULE)
    if module is None:
        module = types.ModuleType(_TIMM_MODULE, "timm entrypoints of rb-crossclass zoo entries")
        sys.modules[_TIMM_MODULE] = module
    names = []
    for entry in list_entries(root, dataset, threat_model):
        fn = _timm_entrypoint(entry)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # re-registration overwrites on purpose
            register_model(fn)
        names.append(entry.timm_name)
    return names


def _timm_entrypoint(entry: ZooEntry):
    def create(pretrained: bool = False, pretrained_cfg: Any = None, pretrained_cfg_overlay: Any = None,
               num_classes: int | None = None, **kwargs: Any) -> FeatureClassifier:
        if num_classes is not None and num_classes != entry.num_classes:
            raise ZooError(f"zoo entry {entry.name} has {entry.num_classes} classes, asked for {num_classes}")
        if kwargs:
            raise ZooError(f"zoo entry {entry.name}: unsupported timm arguments {sorted(kwargs)}")
        return build_zoo_model(entry, pretrained=pretrained)

    create.__name__ = create.__qualname__ = entry.timm_name
    create.__module__ = _TIMM_MODULE
    create.__doc__ = f"rb-crossclass zoo entry {entry.name} ({entry.yaml_path})"
    return create
