"""The model stage: the FeatureClassifier contract, checkpoints, model sources and the zoo catalog."""

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

__all__ = [
    "CheckpointError",
    "ChecksumMismatchError",
    "FeatureClassifier",
    "ModelContractError",
    "ModelSourceError",
    "ModelSpec",
    "Normalize",
    "SourceOptions",
    "available_sources",
    "build_model_for_data",
    "check_contract",
    "check_sha256",
    "create_model_source",
    "download_checkpoint",
    "logits_of",
    "prepare_for_device",
    "read_state_dict",
    "reconcile_classes",
    "register_source",
    "save_safetensors",
    "sha256_file",
    "wrap_model",
]

if TYPE_CHECKING:
    from .checkpoint import (
        CheckpointError,
        ChecksumMismatchError,
        check_sha256,
        download_checkpoint,
        read_state_dict,
        save_safetensors,
        sha256_file,
    )
    from .feature_classifier import (
        FeatureClassifier,
        ModelContractError,
        Normalize,
        check_contract,
        logits_of,
        wrap_model,
    )
    from .fit import ModelSpec, build_model_for_data, prepare_for_device, reconcile_classes
    from .sources import (
        ModelSourceError,
        SourceOptions,
        available_sources,
        create_model_source,
        register_source,
    )


lazy_exports(__name__)
