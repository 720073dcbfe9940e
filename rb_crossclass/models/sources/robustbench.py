"""``robustbench:<Name>``: a model of RobustBench's zoo through ``robustbench.utils.load_model``.

Offline it works when ``<model_dir>/<dataset>/<threat_model>/<Name>.pt`` is already in place
(RobustBench's layout); a file that is an HTML page or truncated is reported with the file to
delete before robustbench touches it. :func:`build_architecture` builds an entry's network
without any weights (random init), e.g. to plan which entries the cross-class metric applies to.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from torch import nn

from ...core.datasets import BOARD_DATASETS, known_dataset
from ...core.io import no_empty_folders_left
from ..checkpoint import CheckpointError, read_state_dict, torch_error_text
from ..feature_classifier import FeatureClassifier, wrap_model
from .registry import ModelSourceError, SourceOptions, register_source


def zoo_entries(dataset: str, threat_model: str) -> dict:
    """RobustBench's model-zoo dict of one board (``{Name: {"model": callable, ...}}``)."""
    from ...compat import import_robustbench

    import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    if dataset not in BOARD_DATASETS:
        raise ModelSourceError(f"robustbench has no models for dataset {dataset!r} "
                               f"(its boards: {', '.join(BOARD_DATASETS)})")
    try:
        return model_dicts[BenchmarkDataset(dataset)][ThreatModel(threat_model)]
    except (ValueError, KeyError) as err:
        raise ModelSourceError(f"robustbench has no {dataset}/{threat_model} board ({err})") from err


def zoo_entry(name: str, dataset: str, threat_model: str) -> dict:
    """One entry of RobustBench's model zoo; a clear error naming close entries when absent."""
    zoo = zoo_entries(dataset, threat_model)
    if name not in zoo:
        raise ModelSourceError(f"robustbench has no {dataset}/{threat_model} model {name[:100]!r} "
                               f"(e.g. {', '.join(list(zoo)[:4])})")
    return zoo[name]


def architecture_builder(name: str, dataset: str, threat_model: str) -> tuple[Callable[[], nn.Module], str]:
    """``(build, how)``: what ``robustbench.utils.load_model`` builds for an entry, before it loads
    weights: timm's registered ``<name>_<dataset>_<threat_model>`` model when timm has it
    (``how = "timm:<that name>"``; compat quirk 7), else the zoo's callable (``"zoo callable"``)."""
    import timm

    from ...compat import robustbench_timm_name

    entry = zoo_entry(name, dataset, threat_model)
    timm_name = robustbench_timm_name(name, dataset, threat_model)
    if timm.is_model(timm_name):
        num_classes = known_dataset(dataset).num_classes
        return (lambda: timm.create_model(timm_name, num_classes=num_classes, pretrained=False)), \
            f"timm:{timm_name}"
    return entry["model"], "zoo callable"


def build_architecture(name: str, dataset: str, threat_model: str, *, on_meta: bool = False,
                       changed: list[str] | None = None) -> nn.Module:
    """The entry's network without weights, in eval mode: random init on CPU, or with every
    parameter and buffer on the ``meta`` device (``on_meta``: no memory, for structure checks).
    Nothing is downloaded (compat quirk 8: ``pretrained`` forced off, ``.cuda()`` a no-op without
    CUDA); ``changed`` receives the calls whose weights were turned off."""
    from ...compat import robustbench_offline_build
    from ..structure import move_to_meta, params_on_meta

    build, _ = architecture_builder(name, dataset, threat_model)
    with robustbench_offline_build() as turned_off, \
            (params_on_meta() if on_meta else contextlib.nullcontext()):
        net = build()
    if changed is not None:
        changed.extend(turned_off)
    if on_meta:
        move_to_meta(net)
    return net.eval()


def input_shape(name: str, dataset: str, threat_model: str) -> tuple[int, int, int]:
    """``(C, H, W)`` of an entry's inputs: the dataset's, except ImageNet entries whose zoo record
    asks for ``Crop288`` preprocessing (288×288)."""
    c, h, w = known_dataset(dataset).shape
    if zoo_entry(name, dataset, threat_model).get("preprocessing") == "Crop288":
        return c, 288, 288
    return c, h, w


def checkpoint_path(model_dir: str | Path, dataset: str, threat_model: str, name: str) -> Path:
    """Where robustbench keeps an entry's weights: ``<model_dir>/<dataset>/<threat_model>/<Name>.pt``."""
    return Path(model_dir) / dataset / threat_model / f"{name}.pt"


@register_source("robustbench")
def robustbench_source(name: str, opts: SourceOptions) -> FeatureClassifier:
    from robustbench.utils import load_model

    dataset = opts.dataset or ""
    zoo_entry(name, dataset, opts.threat_model)
    path = checkpoint_path(opts.model_dir, dataset, opts.threat_model, name)
    if path.is_file():
        read_state_dict(path)  # clear errors for HTML pages / truncated files before robustbench
    try:
        with no_empty_folders_left(path.parent):
            net = load_model(name, model_dir=opts.model_dir, dataset=dataset, threat_model=opts.threat_model)
    except CheckpointError:
        raise
    except Exception as err:  # noqa: BLE001 - gdown / requests / torch errors
        _, how = architecture_builder(name, dataset, opts.threat_model)
        if how.startswith("timm:"):
            hint = (f"robustbench loads it through timm's registry ({how}), which downloads the weights "
                    "itself (model_dir is not used for it); offline, place them in the Hugging Face / "
                    "torch hub cache")
        elif not path.is_file():
            hint = (f"the checkpoint {path} is missing and could not be downloaded (offline?): place the "
                    "file there and retry")
        else:
            hint = f"{path} could not be loaded into the architecture: delete it and download again"
        raise ModelSourceError(f"robustbench:{name}: {hint} "
                               f"({type(err).__name__}: {torch_error_text(err, 200)})") from err
    meta = {"architecture": type(net).__name__, "family": "robustbench", "robustbench_name": name,
            "input_shape": opts.input_shape}
    return wrap_model(net, head_name=opts.head_name, meta=meta)
