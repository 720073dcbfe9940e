"""``timm:<name>``: any timm architecture, randomly initialised (or ``pretrained`` when cached).

For inputs of at most 64 px, ResNet-family stems become a 3×3 stride-1 conv without max-pool
(the CIFAR stem) and ViT-family models get ``img_size`` and a 4-px (8-px above 32) patch; the
dataset's normalization is the model's first layer.
"""

from __future__ import annotations

from torch import nn

from ...core.datasets import normalization
from ..feature_classifier import FeatureClassifier, Normalize, wrap_model
from .registry import ModelSourceError, SourceOptions, register_source

RESNET_LIKE = ("resnet", "resnext", "wide_resnet", "seresnet", "resnetv2", "regnet", "skresnet")
VIT_LIKE = ("vit_", "deit", "beit", "eva")


def adapt_stem_for_small_inputs(net: nn.Module) -> bool:
    """ResNet family: 3×3 stride-1 first conv and no max-pool (the CIFAR stem). Returns whether
    the model was changed."""
    conv = getattr(net, "conv1", None)
    if isinstance(conv, nn.Sequential) and isinstance(conv[0], nn.Conv2d):
        # deep stems (resnet*d, resnet10t): keep the 3×3 convs, drop the first stride
        conv[0].stride = (1, 1)
    elif isinstance(conv, nn.Conv2d):
        net.conv1 = nn.Conv2d(conv.in_channels, conv.out_channels, 3, 1, 1,
                              bias=conv.bias is not None)
    else:
        return False
    if hasattr(net, "maxpool"):
        net.maxpool = nn.Identity()
    return True


@register_source("timm")
def timm_source(name: str, opts: SourceOptions) -> FeatureClassifier:
    from ...compat import import_timm

    timm = import_timm()
    if not timm.is_model(name):
        close = timm.list_models(f"*{name[:40]}*")[:5]
        raise ModelSourceError(f"timm has no model {name[:100]!r}" + (f"; close: {close}" if close else ""))
    small = opts.cifar_stem if opts.cifar_stem is not None else opts.img_size <= 64
    kwargs = dict(num_classes=opts.num_classes, in_chans=opts.in_chans, pretrained=opts.pretrained)
    is_vit = name.startswith(VIT_LIKE)
    if small and is_vit:
        kwargs.update(img_size=opts.img_size, patch_size=4 if opts.img_size <= 32 else 8)
    kwargs.update(opts.extra)
    try:
        net = timm.create_model(name, **kwargs)
    except Exception as err:  # noqa: BLE001 - timm raises many types (e.g. offline pretrained)
        raise ModelSourceError(f"timm could not create {name!r} with {kwargs}: {str(err)[:300]}") from err
    adapted = small and name.startswith(RESNET_LIKE) and adapt_stem_for_small_inputs(net)
    normalize = Normalize(*normalization(opts.dataset, opts.in_chans)) if opts.normalize else None
    meta = {"architecture": name, "family": "timm", "cifar_stem": bool(adapted or (small and is_vit)),
            "input_shape": opts.input_shape}
    return wrap_model(net, normalize=normalize, meta=meta)
