"""Adversarial training: typed configs and presets (:mod:`.config`), the loop (:mod:`.loop`), what
a run is built from (:mod:`.setup`), its checkpoints (:mod:`.checkpoints`) and files
(:mod:`.outputs`)."""

from .checkpoints import ResumeError, load_checkpoint
from .config import ConfigError, TrainConfig, config_from_dict, config_to_yaml, list_presets, load_config
from .loop import TrainingDivergedError, train
from .outputs import TrainResult

__all__ = [
    "ConfigError",
    "ResumeError",
    "TrainConfig",
    "TrainResult",
    "TrainingDivergedError",
    "config_from_dict",
    "config_to_yaml",
    "list_presets",
    "load_config",
    "load_checkpoint",
    "train",
]
