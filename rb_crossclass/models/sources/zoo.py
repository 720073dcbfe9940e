"""``zoo:<Name>``: an entry of our model zoo (:mod:`rb_crossclass.models.zoo_catalog`), with its
checkpoint verified against the sha256 its YAML records."""

from __future__ import annotations

import torch

from ..checkpoint import load_into, read_state_dict
from ..feature_classifier import FeatureClassifier, check_contract
from ..zoo_catalog import ZooEntry, checkpoint_file, find_entry
from .registry import SourceOptions, create_model_source, register_source


def build_zoo_model(entry: ZooEntry, *, pretrained: bool = True, check: bool = True) -> FeatureClassifier:
    """The entry's FeatureClassifier (eval mode, CPU); weights loaded and verified when ``pretrained``."""
    opts = SourceOptions(
        num_classes=entry.num_classes, in_chans=entry.input_shape[0], img_size=entry.input_shape[1],
        dataset=entry.dataset, threat_model=entry.threat_model, cifar_stem=entry.cifar_stem,
        extra=dict(entry.extra),
    )
    model = create_model_source(entry.architecture, opts, check=False)
    if pretrained:
        path = checkpoint_file(entry)
        load_into(model, read_state_dict(path), source=str(path))
        model.meta["checkpoint"] = str(path)
        model.meta["checkpoint_sha256"] = entry.sha256
    model.meta.update(source=f"zoo:{entry.name}", zoo_entry=str(entry.yaml_path),
                      input_shape=tuple(entry.input_shape))
    model.eval()
    if check:
        probe = torch.rand(2, *entry.input_shape, generator=torch.Generator().manual_seed(0))
        check_contract(model, probe)
    return model


@register_source("zoo")
def zoo_source(name: str, opts: SourceOptions) -> FeatureClassifier:
    entry = find_entry(name, dataset=opts.dataset, threat_model=opts.threat_model)
    return build_zoo_model(entry, check=False)  # create_model_source checks the contract
