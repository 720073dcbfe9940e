"""How a scoring pass computes: device defaults, memory format, folded batch norms, compile, bf16.

The scorer (:mod:`.scoring`) decides *what* is computed; this module decides *how*, so the speed
choices live in one place (``benchmarks/bench_crossclass.py`` measures each of them):

- :class:`ComputeSettings`: the caller's choices, public and passed whole (``score_model``,
  ``score_examples``, ``evaluate_model``); ``None`` fields take the defaults below;
- :class:`PassSettings` / :func:`resolve_settings`: the caller's choices completed by the defaults
  (batch :func:`default_batch_size` of the device, channels_last by
  :func:`~rb_crossclass.core.runtime.prefers_channels_last`, bf16 only where
  :func:`~rb_crossclass.core.runtime.require_bf16` allows it);
- :func:`scoring_mode`: eval mode, no parameter gradients, the memory format, all restored;
- :func:`pass_models`: the model a pass runs (a copy with its batch norms folded,
  :func:`~rb_crossclass.models.fold.fold_batch_norms`) and the attack's form of it (compiled or not).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import nn

from ..core.runtime import prefers_channels_last, require_bf16, resolve_device
from ..models.fold import fold_batch_norms
from .errors import ScoringError

__all__ = ["CPU_BATCH_SIZE", "ComputeSettings", "compute_from_legacy",
           "FOLD_PROBE", "GPU_BATCH_SIZE", "PassModels", "PassSettings", "compile_errors",
           "default_batch_size", "forward_features", "pad_batch", "pass_models", "resolve_settings",
           "scoring_mode", "to_device"]

CPU_BATCH_SIZE = 64
"""Default batch on CPU: small enough for a ResNet-18's activations to stay in a CPU's caches
(batches of 256 ran 1.4× slower per image than 64 on this project's CPU; see the docs'
Benchmarks page). Per-sample results are the same for every batch size on CPU."""
GPU_BATCH_SIZE = 256
"""Default batch on a GPU (large batches fill it)."""


def default_batch_size(device: torch.device | str) -> int:
    """:data:`CPU_BATCH_SIZE` on CPU, :data:`GPU_BATCH_SIZE` elsewhere."""
    return CPU_BATCH_SIZE if torch.device(device).type == "cpu" else GPU_BATCH_SIZE


@dataclass(frozen=True)
class ComputeSettings:
    """How a pass computes, chosen by the caller and passed whole (never *what* it computes).

    - ``device``: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device`` (default ``"cpu"``);
      ``None`` or ``"auto"``: CUDA when available, else CPU;
    - ``bf16``: forwards and input-backwards under bf16 autocast (raises
      :class:`~rb_crossclass.core.runtime.Bf16UnsupportedError` where the device lacks native
      bf16); AutoAttack itself always stays float32;
    - ``channels_last``: NHWC memory format; ``None`` = on for convolutional models on CPU and
      CUDA (:func:`~rb_crossclass.core.runtime.prefers_channels_last`);
    - ``batch_size``: images per batch, >= 1; ``None`` = :func:`default_batch_size` of the device
      (for :func:`~rb_crossclass.evaluate.evaluate_model`: the scoring passes' batch, ``None`` =
      AutoAttack's, which its ``AutoAttackConfig.batch_size`` sets);
    - ``threads``: CPU intra-op threads set with ``torch.set_num_threads`` for the pass; ``None``
      leaves the process's setting (the CLI applies :func:`~rb_crossclass.core.runtime.set_cpu_threads`);
    - ``compile``: ``torch.compile`` of the attack step (a one-off compilation; float rounding differs);
    - ``fold_bn``: run a checked copy of the model with eval-mode batch norms folded into the
      convolutions before them (float rounding differs from the model as it is).

    Only the numbers' float rounding depends on these settings (see :mod:`.scoring`).
    """

    device: str | torch.device | None = "cpu"
    bf16: bool = False
    channels_last: bool | None = None
    batch_size: int | None = None
    threads: int | None = None
    compile: bool = False
    fold_bn: bool = True

    def replace(self, **changes: Any) -> ComputeSettings:
        """A copy with ``changes`` applied (field names as above)."""
        return replace(self, **changes)

    def apply_threads(self) -> None:
        """``torch.set_num_threads(threads)`` when ``threads`` is set; raises
        :class:`ScoringError` for a count < 1."""
        if self.threads is None:
            return
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1:
            raise ScoringError(f"threads must be an integer >= 1, got {self.threads!r}")
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)


_LEGACY_NAMES = {"device": "device", "batch_size": "batch_size", "channels_last": "channels_last",
                 "autocast": "bf16", "score_bf16": "bf16", "bf16": "bf16", "compile": "compile",
                 "fold_bn": "fold_bn", "score_batch_size": "batch_size", "threads": "threads"}


def compute_from_legacy(compute: ComputeSettings | None, legacy: Mapping[str, Any], where: str,
                        allowed: tuple[str, ...]) -> ComputeSettings:
    """``compute`` (default :class:`ComputeSettings()`) updated by the flat keywords of the old
    signature of ``where`` (each named in ``allowed``), with one :class:`DeprecationWarning`;
    raises :class:`TypeError` for a keyword ``where`` never took (as Python would)."""
    unknown = [k for k in legacy if k not in allowed]
    if unknown:
        raise TypeError(f"{where}() got an unexpected keyword argument {unknown[0]!r}")
    compute = compute if compute is not None else ComputeSettings()
    if not legacy:
        return compute
    warnings.warn(f"{where}({', '.join(f'{k}=' for k in legacy)}) is deprecated: pass "
                  f"compute=ComputeSettings({', '.join(f'{_LEGACY_NAMES[k]}=' for k in legacy)})",
                  DeprecationWarning, stacklevel=3)
    names = {f.name for f in fields(ComputeSettings)}
    changes = {_LEGACY_NAMES[k]: v for k, v in legacy.items() if _LEGACY_NAMES[k] in names}
    return replace(compute, **changes)


@dataclass(frozen=True)
class PassModels:
    """The models a pass runs: ``eager`` (the model, or its copy with batch norms folded) for
    clean and final forwards, ``attack`` for the attack steps (``eager`` or its compiled form)."""

    eager: nn.Module
    attack: nn.Module


def _is_nchw(t: torch.Tensor) -> bool:
    return t.dim() == 4 and t.is_contiguous() and not t.is_contiguous(memory_format=torch.channels_last)


@contextlib.contextmanager
def scoring_mode(model: nn.Module, channels_last: bool) -> Iterator[None]:
    """Eval mode, no parameter gradients and (``channels_last``) NHWC weights during the pass;
    modes, flags and memory formats are restored afterwards (a training run that scores between
    epochs must not have its layout changed under it; layout never changes values)."""
    modes = [(m, m.training) for m in model.modules()]  # restored module by module
    flags = [(p, p.requires_grad) for p in model.parameters()]
    nchw = [(m, table, name) for m in model.modules() for table in (m._parameters, m._buffers)
            for name, t in table.items() if t is not None and _is_nchw(t)] if channels_last else []
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        for _, table, name in nchw:
            t = table[name]
            if isinstance(t, nn.Parameter):
                t.data = t.data.contiguous()
            else:
                table[name] = t.contiguous()
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, mode in modes:
            m.training = mode


def forward_features(model: nn.Module, x: torch.Tensor,
                     bf16: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits [B,K], features [B,D])`` in float32 of one no-grad forward (bf16 autocast with ``bf16``)."""
    with torch.no_grad(), torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits, feats = model.forward_with_features(x)
    return logits.float(), feats.float()


def to_device(t: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """``t`` on ``device``; a 4-D ``t`` in channels_last when asked."""
    t = t.to(device, non_blocking=True)
    if channels_last and t.dim() == 4:
        t = t.contiguous(memory_format=torch.channels_last)
    return t


@dataclass(frozen=True)
class PassSettings:
    """How a pass runs, resolved from the caller's choices and the defaults."""

    device: torch.device
    batch_size: int
    channels_last: bool
    bf16: bool
    compile: bool = False
    fold_bn: bool = True

    def as_dict(self, folded: int = 0) -> dict:
        """The record of a pass that folded ``folded`` batch norms."""
        return {"device": str(self.device), "batch_size": self.batch_size,
                "channels_last": self.channels_last, "bf16": self.bf16, "compile": self.compile,
                "fold_batch_norms": folded,
                "threads": torch.get_num_threads() if self.device.type == "cpu" else None}


def resolve_settings(model: nn.Module, device: str | torch.device | ComputeSettings,
                     batch_size: int | None = None, channels_last: bool | None = None,
                     autocast: bool = False, compile: bool = False, fold_bn: bool = True) -> PassSettings:
    """The caller's choices (``None``: the default) for ``model`` on ``device`` (or all of them as
    one :class:`ComputeSettings`, which also applies its ``threads``); raises
    :class:`ScoringError` for a bad batch size and
    :class:`~rb_crossclass.core.runtime.Bf16UnsupportedError` for bf16 without native hardware."""
    if isinstance(device, ComputeSettings):
        c = device
        c.apply_threads()
        device, batch_size, channels_last, autocast, compile, fold_bn = (
            c.device, c.batch_size, c.channels_last, c.bf16, c.compile, c.fold_bn)
    device = resolve_device(None) if device is None or device == "auto" else torch.device(device)
    if batch_size is None:
        batch_size = default_batch_size(device)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ScoringError(f"batch size must be an integer >= 1, got {batch_size!r}")
    if autocast:
        require_bf16(device, "bf16 scoring")
    if channels_last is None:
        channels_last = prefers_channels_last(model, device)
    return PassSettings(device, batch_size, bool(channels_last), bool(autocast), bool(compile), bool(fold_bn))


def _compiled(model: nn.Module) -> nn.Module:
    """``torch.compile`` of ``model``'s forward for the attack steps (static shapes: one
    compilation). ``forward_with_features`` of the result is the eager model's (final forwards)."""
    return torch.compile(model, dynamic=False)


@contextlib.contextmanager
def compile_errors(active: bool) -> Iterator[None]:
    """A failed ``torch.compile`` (e.g. no C++ compiler) as one :class:`ScoringError` line."""
    if not active:
        yield
        return
    from torch._dynamo.exc import BackendCompilerFailed

    try:
        yield
    except BackendCompilerFailed as err:
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise ScoringError(f"compile: torch.compile failed ({type(err).__name__}: {first}); "
                           "score without compile") from err


def pad_batch(t: torch.Tensor, size: int) -> torch.Tensor:
    """``t`` with its last row repeated up to ``size`` rows (the extra rows are dropped after)."""
    extra = t[-1:].expand(size - len(t), *t.shape[1:])
    out = torch.cat([t, extra])
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
        out = out.contiguous(memory_format=torch.channels_last)
    return out


FOLD_PROBE = 16
"""Images of the probe batch on which folded batch norms are checked against the model."""


def pass_models(model: nn.Module, x: torch.Tensor, compute: PassSettings) -> tuple[PassModels, int]:
    """The models of a pass over ``x`` (``model`` in :func:`scoring_mode` already) and the number
    of batch norms folded (checked on the first :data:`FOLD_PROBE` images)."""
    eager, folded = model, 0
    if compute.fold_bn:
        probe = to_device(x[:FOLD_PROBE], compute.device, compute.channels_last)
        eager, folded = fold_batch_norms(model, probe)
    return PassModels(eager, _compiled(eager) if compute.compile else eager), folded
