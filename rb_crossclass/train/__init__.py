"""Adversarial training: typed configs and presets (:mod:`.config`), the loop (:mod:`.loop`), what
a run is built from (:mod:`.setup`), its checkpoints (:mod:`.checkpoints`) and files
(:mod:`.outputs`)."""

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
]

lazy_exports(__name__, {
    "ResumeError": ".checkpoints",
    "load_checkpoint": ".checkpoints",
    "ConfigError": ".config",
    "TrainConfig": ".config",
    "config_from_dict": ".config",
    "config_to_yaml": ".config",
    "list_presets": ".config",
    "parse_override": ".config",
    "presets_needing_shared_data": ".config",
    "load_config": ".config",
    "TrainingDivergedError": ".loop",
    "train": ".loop",
    "TrainResult": ".outputs",
})
