"""Adversarial training: typed configs and presets (:mod:`.config`), the loop (:mod:`.loop`), what
a run is built from (:mod:`.setup`), its checkpoints (:mod:`.checkpoints`) and files
(:mod:`.outputs`)."""

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

__all__ = [
    "ConfigError",
    "ResumeError",
    "TrainConfig",
    "TrainResult",
    "TrainingDivergedError",
    "config_from_dict",
    "config_to_yaml",
    "list_presets",
    "parse_override",
    "presets_needing_shared_data",
    "load_config",
    "load_checkpoint",
    "train",
    "train_summary",
]

if TYPE_CHECKING:
    from .checkpoints import ResumeError, load_checkpoint
    from .config import (
        ConfigError,
        TrainConfig,
        config_from_dict,
        config_to_yaml,
        list_presets,
        load_config,
        parse_override,
        presets_needing_shared_data,
        train_summary,
    )
    from .loop import TrainingDivergedError, train
    from .outputs import TrainResult

lazy_exports(__name__)
