"""Is a network's output ``W g(x) + b``? Read from its structure, without weights.

:func:`check_contract` decides with real numbers on a probe; this module decides from the
*structure* alone, so a network can be judged with its parameters on the ``meta`` device (no
memory, no weights, no download) before anyone fetches its checkpoint:

- :func:`params_on_meta` builds a network whose parameters and buffers land on ``meta`` as they
  are registered (the constructor itself runs on CPU, so host-side code such as
  ``torch.linspace(...).tolist()`` still works; 0-dim tensors stay on CPU);
- :func:`inspect_structure` runs one forward on a probe (meta or real) with an op log and module
  hooks and names the verdict: ``ok``, or why the cross-class metric is undefined:

  ========================  ====================================================================
  ``mixing_network``        two classifiers mixed per input (robustbench's mixing classes)
  ``ensemble``              several classifier heads (``Linear(., K)`` or 1×1 ``Conv2d(., K)``)
                            called and their outputs combined
  ``no_linear_head``        no ``nn.Linear`` head (e.g. a 1×1-conv head on pooled features)
  ``head_not_final``        the head the project would use is not called, gets no ``[B,D]``
                            input, or its output shape differs from the logits
  ``randomized``            random numbers are drawn in forward
  ``output_transform``      the logits are changed after the head (ops other than views/copies)
  ``unknown``               the forward could not run on this probe (e.g. ``.item()`` on meta);
                            judge it with real tensors instead (:func:`check_contract`)
  ========================  ====================================================================

The head examined is the one :func:`wrap_model` picks (timm's classifier, else the last
``nn.Linear``), so ``ok`` here predicts that :func:`check_contract` passes with any weights.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..compat import ROBUSTBENCH_MIXING_CLASSES
from .feature_classifier import HEAD_HINT, ModelContractError, logits_of, pick_head, with_head_hint

#: torch functions that cannot change the values of the logits (views, copies, queries, checks).
BENIGN_OPS = frozenset({
    "Tensor.float", "Tensor.to", "Tensor.contiguous", "Tensor.view", "Tensor.reshape", "Tensor.detach",
    "Tensor.clone", "Tensor.size", "Tensor.dim", "Tensor.numel", "Tensor.type", "Tensor.cpu",
    "Tensor.squeeze", "Tensor.isnan", "Tensor.any", "Tensor.all", "Tensor.__bool__",
    "Tensor.is_floating_point", "Tensor.__len__", "Tensor.__hash__", "Tensor.__format__",
    "Tensor.__invert__", "Tensor.__torch_function__", "Tensor.__repr__", "isnan", "any", "all",
})
#: torch functions that draw random numbers.
RANDOM_OPS = frozenset({"rand", "randn", "rand_like", "randn_like", "randint", "bernoulli", "normal",
                        "multinomial", "randperm", "Tensor.bernoulli_", "Tensor.normal_",
                        "Tensor.uniform_", "Tensor.random_", "Tensor.exponential_"})
STRUCTURE_REASONS = ("mixing_network", "ensemble", "no_linear_head", "head_not_final", "randomized",
                     "output_transform", "unknown")


@dataclass
class StructureReport:
    """The verdict of :func:`inspect_structure` and its evidence.

    ``reason`` is ``"ok"`` or one of :data:`STRUCTURE_REASONS`; ``detail`` says it in words.
    Shapes are lists (``head_input`` ``[B,D]``, ``output`` ``[B,K]``); ``class_heads`` are the
    names of the modules called in forward whose output has K values per sample; ``ops_after_head``
    the value-changing torch functions run after the head's last call.
    """

    reason: str
    detail: str = ""
    head: str | None = None
    feature_dim: int | None = None
    num_classes: int | None = None
    head_input: list[int] | None = None
    head_output: list[int] | None = None
    output: list[int] | None = None
    class_heads: list[str] = field(default_factory=list)
    ops_after_head: list[str] = field(default_factory=list)
    random_ops: list[str] = field(default_factory=list)
    n_linear: int = 0

    @property
    def applicable(self) -> bool:
        return self.reason == "ok"

    @property
    def known(self) -> bool:
        return self.reason != "unknown"

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- building on meta
@contextlib.contextmanager
def params_on_meta() -> Iterator[None]:
    """Build networks with every parameter and buffer (of dimension ≥ 1) moved to ``meta`` as it
    is registered; the constructor runs on CPU. Use :func:`move_to_meta` on the result for
    tensors assigned in other ways."""
    register_parameter, register_buffer = nn.Module.register_parameter, nn.Module.register_buffer

    def on_meta_parameter(self, name, param):
        register_parameter(self, name, param)
        p = self._parameters.get(name)
        if p is not None and p.dim() > 0 and p.device.type != "meta":
            self._parameters[name] = type(p)(p.to("meta"), requires_grad=p.requires_grad)

    def on_meta_buffer(self, name, tensor, persistent=True):
        if isinstance(tensor, torch.Tensor) and tensor.dim() > 0:
            tensor = tensor.to("meta")
        register_buffer(self, name, tensor, persistent)

    nn.Module.register_parameter = on_meta_parameter
    nn.Module.register_buffer = on_meta_buffer
    try:
        yield
    finally:
        nn.Module.register_parameter = register_parameter
        nn.Module.register_buffer = register_buffer


def move_to_meta(net: nn.Module) -> nn.Module:
    """Move what :func:`params_on_meta` could not catch to ``meta``: parameters/buffers assigned
    after construction and plain tensor attributes of modules (0-dim tensors stay). Returns ``net``."""
    for mod in net.modules():
        for name, p in list(mod._parameters.items()):
            if p is not None and p.dim() > 0 and p.device.type != "meta":
                mod._parameters[name] = type(p)(p.to("meta"), requires_grad=p.requires_grad)
        for name, b in list(mod._buffers.items()):
            if b is not None and b.dim() > 0 and b.device.type != "meta":
                mod._buffers[name] = b.to("meta")
        for name, value in list(vars(mod).items()):
            if isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter) \
                    and value.dim() > 0 and value.device.type != "meta":
                setattr(mod, name, value.to("meta"))
    return net


def count_parameters(net: nn.Module) -> int:
    """Number of parameter values (meta parameters count too)."""
    return int(sum(p.numel() for p in net.parameters()))


# --------------------------------------------------------------------------- the trace
def _op_name(func) -> str:
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    return name.replace("_TensorBase.", "Tensor.").replace("TensorBase.", "Tensor.")


class _OpLog(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.ops.append(_op_name(func))
        return func(*args, **(kwargs or {}))


def _is_class_head(module: nn.Module, output: object, k: int) -> bool:
    if not isinstance(output, torch.Tensor) or output.dim() < 2 or output.shape[1] != k:
        return False
    if isinstance(module, nn.Linear):
        return output.dim() == 2
    if isinstance(module, nn.Conv2d):
        return tuple(module.kernel_size) == (1, 1) and tuple(output.shape[2:]) == (1, 1)
    return False


@dataclass
class _Trace:
    output: torch.Tensor
    raw: object  # the network's own output
    ops: list[str]
    linear_calls: list[tuple[str, object, object, int]]  # (name, input, output, op index after)
    class_heads: list[tuple[str, int]]  # (name, op index after its call)


def _trace(net: nn.Module, probe: torch.Tensor, k: int) -> _Trace:
    names = {id(m): n for n, m in net.named_modules()}
    log = _OpLog()
    linear_calls: list[tuple[str, object, object, int]] = []
    class_heads: list[tuple[str, int]] = []

    def every_module(module, inputs, output):
        name = names.get(id(module), type(module).__name__)
        if _is_class_head(module, output, k):
            class_heads.append((name, len(log.ops)))
        if isinstance(module, nn.Linear) and id(module) in names:
            linear_calls.append((name, inputs[0] if inputs else None, output, len(log.ops)))

    hooks = [torch.nn.modules.module.register_module_forward_hook(every_module)]
    try:
        with torch.no_grad(), log:
            raw = net(probe)
        output = logits_of(raw, k)
    finally:
        for h in hooks:
            h.remove()
    return _Trace(output, raw, log.ops, linear_calls, class_heads)


def _head_of(net: nn.Module, tr: _Trace, head_name: str | None) -> tuple[str | None, nn.Linear | None]:
    """The head the project would use: ``head_name``, else the ``nn.Linear`` whose output is the
    logits in the traced forward (:func:`pick_head`), else the last one registered."""
    linears = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear)
               and (head_name is None or n == head_name)]
    if not linears:
        return None, None
    found = None if head_name else pick_head([(n, out) for n, _, out, _ in tr.linear_calls], tr.raw)
    return next(((n, m) for n, m in linears if n == found), linears[-1])


def _value_ops(ops: list[str]) -> list[str]:
    """The value-changing ops among ``ops``, once each, in order (``torch.softmax`` style names)."""
    seen: OrderedDict[str, None] = OrderedDict()
    for op in ops:
        if op not in BENIGN_OPS and not op.endswith("__get__"):
            seen[op.replace("_VariableFunctionsClass.", "torch.")] = None
    return list(seen)


def _random_ops(ops: list[str]) -> list[str]:
    return sorted({o for o in ops if o in RANDOM_OPS or o.rsplit(".", 1)[-1] in RANDOM_OPS})


def _distinct(names: list[tuple[str, int]]) -> list[str]:
    return list(OrderedDict((n, None) for n, _ in names))


def inspect_structure(net: nn.Module, probe: torch.Tensor, num_classes: int, *,
                      head_name: str | None = None) -> StructureReport:
    """The structural verdict on ``net`` (eval mode) for ``probe: [B,C,H,W]`` on the device of its
    parameters (``meta`` or real), ``num_classes`` K. Never raises for a network that fails on the
    probe: the verdict is then ``unknown`` with the error as ``detail``."""
    k = int(num_classes)
    n_linear = sum(isinstance(m, nn.Linear) for m in net.modules())
    mixing = sorted({type(m).__name__ for m in net.modules()} & ROBUSTBENCH_MIXING_CLASSES)
    if mixing:
        detail = f"{', '.join(mixing)}: two classifiers mixed per input by a non-linear rule"
        return StructureReport("mixing_network", with_head_hint(detail), num_classes=k, n_linear=n_linear)
    try:
        tr = _trace(net, probe, k)
    except Exception as err:  # noqa: BLE001 - any failure of third-party code on this probe
        return StructureReport("unknown", f"forward on a {probe.device.type} probe failed: "
                               f"{type(err).__name__}: {str(err)[:200]}",
                               num_classes=k, n_linear=n_linear)
    head_label, head = _head_of(net, tr, head_name)
    rep = StructureReport("ok", head=head_label, num_classes=k, n_linear=n_linear,
                          output=list(tr.output.shape), class_heads=_distinct(tr.class_heads),
                          random_ops=_random_ops(tr.ops))
    if len(rep.class_heads) > 1:
        last_at = tr.class_heads[-1][1]
        after = _value_ops(tr.ops[last_at:])
        if after:
            rep.ops_after_head = after
            return _verdict(rep, "ensemble", f"{len(rep.class_heads)} classifier heads "
                            f"({', '.join(rep.class_heads[:6])}) combined by {', '.join(after[:6])}")
    if head is None:
        return _verdict(rep, "no_linear_head", "no nn.Linear layer" + (
            f"; the logits come from a 1x1 Conv2d head ({rep.class_heads[-1]}) on pooled features: "
            "linear in them, but not an nn.Linear" if rep.class_heads else ""))
    rep.feature_dim, rep.num_classes = int(head.in_features), int(head.out_features)
    head_calls = [(i, o, at) for n, i, o, at in tr.linear_calls if n == head_label]
    if not head_calls:
        return _verdict(rep, "head_not_final", f"layer {head_label!r} is not called in forward")
    feats, out, at = head_calls[-1]
    rep.head_input = list(feats.shape) if isinstance(feats, torch.Tensor) else None
    rep.head_output = list(out.shape) if isinstance(out, torch.Tensor) else None
    rep.ops_after_head = _value_ops(tr.ops[at:])
    if rep.head_input is None or len(rep.head_input) != 2:
        return _verdict(rep, "head_not_final", f"layer {head_label!r} receives {rep.head_input}, "
                        "not [B,D] features")
    if rep.head_output != rep.output:
        return _verdict(rep, "head_not_final", f"layer {head_label!r} outputs {rep.head_output} but the "
                        f"logits are {rep.output}")
    if rep.random_ops:
        return _verdict(rep, "randomized", f"forward draws random numbers ({', '.join(rep.random_ops)})")
    if rep.ops_after_head:
        return _verdict(rep, "output_transform", f"after {head_label!r} the logits go through "
                        f"{', '.join(rep.ops_after_head[:8])}")
    rep.detail = f"logits = {head_label}(features): Linear({rep.feature_dim}, {rep.num_classes})"
    return rep


def _verdict(rep: StructureReport, reason: str, detail: str) -> StructureReport:
    rep.reason, rep.detail = reason, with_head_hint(detail)
    return rep


def not_applicable_reason(net: nn.Module, err: ModelContractError, probe: torch.Tensor,
                          num_classes: int) -> tuple[str, str]:
    """``(reason, detail)`` for a network :func:`check_contract` refused with ``err``: the contract's
    own reason, made more precise by the structure where it can tell (several heads combined are
    an ``ensemble``, a mixing class a ``mixing_network``, random draws ``randomized``)."""
    if err.reason in ("output_transform", "head_not_final", "no_linear_head"):
        report = inspect_structure(net, probe, num_classes)
        if report.reason in ("ensemble", "mixing_network", "randomized"):
            def bare(text: str) -> str:
                return text.replace(f"; {HEAD_HINT}", "")

            return report.reason, with_head_hint(f"{bare(report.detail)} ({bare(str(err))})")
    return err.reason, str(err)
