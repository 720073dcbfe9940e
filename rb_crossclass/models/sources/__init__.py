"""Model sources: strings like ``timm:resnet18`` turned into a checked :class:`FeatureClassifier`.

One module per source, each registering its factory (:mod:`.registry`):

- ``timm:<name>`` (:mod:`.timm`) — any timm architecture, CIFAR stem for small inputs;
- ``robustbench:<Name>`` (:mod:`.robustbench`) — RobustBench's zoo, offline from placed files;
- ``zoo:<Name>`` (:mod:`.zoo`) — an entry of our model zoo, sha256-verified;
- ``py:<module>:<callable>`` (:mod:`.py`) — any user model.

``checkpoint=PATH`` (safetensors or a ``weights_only`` torch file) applies to every source.
"""

from . import py, robustbench, timm, zoo  # noqa: F401 - each registers its source
from .registry import ModelSourceError, SourceOptions, available_sources, create_model_source, register_source
from .timm import adapt_stem_for_small_inputs
from .zoo import build_zoo_model

__all__ = [
    "ModelSourceError",
    "SourceOptions",
    "adapt_stem_for_small_inputs",
    "available_sources",
    "build_zoo_model",
    "create_model_source",
    "register_source",
]
