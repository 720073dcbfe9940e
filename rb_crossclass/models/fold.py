"""Fold eval-mode batch norms into the convolutions that feed them (a copy; the model is untouched).

In eval mode ``BN(conv(x)) = s ⊙ (W * x + b − μ) + β`` with ``s = γ / √(σ² + ε)`` per output
channel, which is one convolution with weight ``s ⊙ W`` and bias ``s ⊙ (b − μ) + β``. The folded
model computes the same function with fewer memory passes (no batch-norm forward, no batch-norm
backward in an attack step); only float rounding differs (the products are associated
differently), e.g. logits within 5e-6 of the original for a CIFAR ResNet-18.

Pairs are found by running the model once on a probe batch with hooks: a ``BatchNorm2d`` is folded
into a ``Conv2d`` only when its input is that convolution's output tensor, each is called once per
forward, both are of exactly those types (a subclass may compute something else, e.g. a
weight-standardized convolution) and the batch norm uses running statistics. The folded copy is
then checked against the original on the probe (logits and features); any disagreement beyond
float rounding (say the convolution's output was also used elsewhere, or changed in place before
the batch norm) means no folding at all.
"""

from __future__ import annotations

import copy
import logging
from collections import Counter

import torch
from torch import nn

log = logging.getLogger(__name__)

__all__ = ["conv_bn_pairs", "fold_batch_norms"]

FOLD_RTOL = 1e-4
"""Largest difference allowed between folded and original outputs, relative to their largest
magnitude (folding changes float32 rounding by ~1e-6 relative; a wrong fold by O(1))."""


def conv_bn_pairs(model: nn.Module, probe: torch.Tensor) -> list[tuple[str, str]]:
    """``(conv name, batch-norm name)`` of every foldable pair, found by one eval-mode forward of
    ``probe [B,C,H,W]`` (see the module docstring for the rules)."""
    convs = {m: n for n, m in model.named_modules() if type(m) is nn.Conv2d}
    norms = {m: n for n, m in model.named_modules()
             if type(m) in (nn.BatchNorm2d, nn.SyncBatchNorm) and m.track_running_stats
             and m.running_mean is not None and m.running_var is not None}
    if not convs or not norms:
        return []
    calls: Counter = Counter()
    produced: dict[int, tuple[str, torch.Tensor]] = {}  # id(output) -> (conv, output kept alive)
    found: list[tuple[str, str]] = []

    def after_conv(module, _inputs, output):
        calls[convs[module]] += 1
        produced[id(output)] = (convs[module], output)

    def before_norm(module, inputs):
        calls[norms[module]] += 1
        hit = produced.get(id(inputs[0]))
        if hit is not None and hit[1] is inputs[0]:
            found.append((hit[0], norms[module]))

    handles = [m.register_forward_hook(after_conv) for m in convs]
    handles += [m.register_forward_pre_hook(before_norm) for m in norms]
    try:
        with torch.no_grad():
            _outputs(model, probe)
    finally:
        for h in handles:
            h.remove()
    once = [(c, b) for c, b in found if calls[c] == 1 and calls[b] == 1]
    convs_used = Counter(c for c, _ in once)
    return [(c, b) for c, b in once if convs_used[c] == 1]


def _fold_pair(conv: nn.Conv2d, bn: nn.Module) -> None:
    with torch.no_grad():
        scale = torch.rsqrt(bn.running_var.float() + bn.eps)
        if bn.weight is not None:
            scale = scale * bn.weight.float()
        shift = -bn.running_mean.float() * scale
        if bn.bias is not None:
            shift = shift + bn.bias.float()
        if conv.bias is not None:
            shift = shift + conv.bias.float() * scale
        w = conv.weight
        conv.weight = nn.Parameter((w.float() * scale.view(-1, 1, 1, 1)).to(w.dtype)
                                   .contiguous(memory_format=_format_of(w)), requires_grad=False)
        conv.bias = nn.Parameter(shift.to(w.dtype), requires_grad=False)


def _format_of(t: torch.Tensor) -> torch.memory_format:
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def _replace(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, attr, new)


def _close(got: torch.Tensor, want: torch.Tensor) -> bool:
    scale = float(want.abs().max()) + 1e-12
    return bool(torch.isfinite(got).all()) and float((got - want).abs().max()) <= FOLD_RTOL * scale


def _outputs(model: nn.Module, probe: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(logits, features)`` of a model with ``forward_with_features`` (a
    :class:`FeatureClassifier`), ``(logits,)`` of any other model."""
    if callable(getattr(model, "forward_with_features", None)):
        return tuple(model.forward_with_features(probe))
    return (model(probe),)


def fold_batch_norms(model: nn.Module, probe: torch.Tensor) -> tuple[nn.Module, int]:
    """``(folded copy, number of batch norms folded)`` of an eval-mode ``model``, or
    ``(model, 0)`` when nothing can be folded or the folded copy does not reproduce the model's
    logits (and, for a :class:`FeatureClassifier`, features) on ``probe [B,C,H,W]`` in [0,1]
    (checked in float32). ``model`` may be any module taking ``probe``."""
    pairs = conv_bn_pairs(model, probe)
    if not pairs:
        return model, 0
    try:
        folded = copy.deepcopy(model)
    except Exception as err:  # noqa: BLE001 - a model that cannot be copied is scored unfolded
        log.info("batch norms not folded: the model cannot be copied (%s)", err)
        return model, 0
    for conv_name, bn_name in pairs:
        _fold_pair(folded.get_submodule(conv_name), folded.get_submodule(bn_name))
        _replace(folded, bn_name, nn.Identity())
    folded.eval()
    with torch.no_grad():
        want, got = _outputs(model, probe), _outputs(folded, probe)
    if not all(_close(g, w) for g, w in zip(got, want, strict=True)):
        log.warning("batch norms not folded: the folded model's outputs differ from the model's on a "
                    "probe batch (a convolution output used elsewhere?)")
        return model, 0
    return folded, len(pairs)
