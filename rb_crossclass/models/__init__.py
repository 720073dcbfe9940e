"""The model stage: the FeatureClassifier contract, checkpoints, model sources and the zoo catalog."""

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

__all__ = [
    "CheckpointError",
    "FeatureClassifier",
    "ModelContractError",
    "ModelSourceError",
    "Normalize",
    "SourceOptions",
    "available_sources",
    "check_contract",
    "create_model_source",
    "logits_of",
    "read_state_dict",
    "register_source",
    "save_safetensors",
    "sha256_file",
    "wrap_model",
    "ChecksumMismatchError",
    "check_sha256",
    "download_checkpoint",
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
    from .sources import (
        ModelSourceError,
        SourceOptions,
        available_sources,
        create_model_source,
        register_source,
    )

lazy_exports(__name__)
