"""The model stage: the FeatureClassifier contract, checkpoints, model sources and the zoo catalog."""

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
]

lazy_exports(__name__, {
    "CheckpointError": ".checkpoint",
    "read_state_dict": ".checkpoint",
    "save_safetensors": ".checkpoint",
    "sha256_file": ".checkpoint",
    "FeatureClassifier": ".feature_classifier",
    "ModelContractError": ".feature_classifier",
    "Normalize": ".feature_classifier",
    "check_contract": ".feature_classifier",
    "logits_of": ".feature_classifier",
    "wrap_model": ".feature_classifier",
    "ModelSourceError": ".sources",
    "SourceOptions": ".sources",
    "available_sources": ".sources",
    "create_model_source": ".sources",
    "register_source": ".sources",
})
