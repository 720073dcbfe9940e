"""The one model interface: :class:`FeatureClassifier`, and the check that a model fits it.

Every model source ends here. A FeatureClassifier takes images ``x: [B,C,H,W]`` in [0,1]
(normalization lives inside), returns logits ``[B,K]`` from ``forward`` and penultimate features
``[B,D]`` from ``features``; ``head`` is the final ``nn.Linear(D, K)`` and the cross-class metric
(Wei, Guo & Wang, ICML 2025) reads ``head.weight`` as ``W`` in ``logits = W g(x) + b``.

:func:`check_contract` verifies exactly that algebra on a probe batch: the wrapped network's own
output, whatever its type (:func:`logits_of`: a tensor, a tuple, a mapping with ``logits``, an
object with ``.logits``), must equal ``F.linear(features, head.weight, head.bias)`` computed from
the head's input in the *same* forward. A model that changes the logits after that layer, or an
``nn.Linear`` subclass that computes something else, is refused with the reason; a model whose
two forwards of one input differ is flagged ``randomized`` in ``meta`` (not refused: the algebra
holds forward by forward).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import RBCrossclassError

#: Why a model is not a FeatureClassifier (:attr:`ModelContractError.reason`); all but
#: ``probe_failed`` mean the cross-class metric is undefined for the model ("not applicable").
CONTRACT_REASONS = {
    "no_linear_head": "no nn.Linear layer produces the logits",
    "head_not_final": "the last nn.Linear is not the classifier head (not called, input not [B,D], "
                      "or output shape differs from the logits)",
    "head_not_linear": "the head is an nn.Linear subclass that does not compute F.linear(x, W, b)",
    "output_transform": "the logits are changed after the head (softmax, scaling, averaging, ...)",
    "no_logits": "the model's output holds no identifiable logits tensor",
    "probe_failed": "the model raised an error on a probe batch",
    "non_finite": "the weights, or the logits on a probe batch, hold NaN or inf",
}
#: Reasons that mean the model (or its checkpoint) is broken, a failure, not "not applicable".
MODEL_FAULTS = ("probe_failed", "non_finite")


#: The way out named by every "not applicable" verdict: the head may be another layer.
HEAD_HINT = ("if another nn.Linear computes the logits, name it as the head: --head NAME "
             "(in a sweep manifest, the model's `head:` key)")


def with_head_hint(message: str) -> str:
    """``message`` ending with :data:`HEAD_HINT` (once)."""
    return message if HEAD_HINT in message else f"{message.rstrip('. ')}; {HEAD_HINT}"


class ModelContractError(RBCrossclassError, ValueError):
    """A model cannot be used as a FeatureClassifier; the message says why (and, for every reason
    but ``probe_failed``, names ``--head``) and ``reason`` names the cause as one of
    :data:`CONTRACT_REASONS`."""

    def __init__(self, message: str, reason: str = "head_not_final") -> None:
        super().__init__(message if reason == "probe_failed" else with_head_hint(message))
        self.reason = reason

    def __reduce__(self):  # keep ``reason`` across pickling (e.g. results of Ray tasks)
        return (type(self), (str(self), self.reason))


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel; ``x: [B,C,H,W]`` in [0,1]."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


def logits_of(output: object, num_classes: int | None = None) -> torch.Tensor:
    """The logits ``[B,K]`` in a network's raw output.

    Accepted: a tensor; a mapping with a ``logits`` key; an object with a ``logits`` attribute
    (Hugging Face outputs); a tuple/list whose 2-D elements include exactly one with ``K`` columns
    (``num_classes``) — so ``(logits, features)`` and ``(features, logits)`` both work — or, when
    ``K`` is not known, whose first element is a 2-D tensor. Anything else raises
    :class:`ModelContractError` naming the type.
    """
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        if isinstance(output.get("logits"), torch.Tensor):
            return output["logits"]
        raise ModelContractError(f"the model returns a mapping with keys {sorted(map(str, output))[:8]} "
                                 "and no 'logits' tensor", reason="no_logits")
    if isinstance(getattr(output, "logits", None), torch.Tensor):
        return output.logits
    if isinstance(output, (tuple, list)):
        tensors = [t for t in output if isinstance(t, torch.Tensor) and t.dim() == 2]
        if num_classes is not None:
            fits = [t for t in tensors if t.shape[1] == num_classes]
            if len(fits) == 1:
                return fits[0]
            raise ModelContractError(
                f"the model returns a {type(output).__name__} of {len(output)} items, {len(fits)} of them "
                f"[B,{num_classes}] tensors: cannot tell which one holds the logits", reason="no_logits"
            )
        if tensors and output and output[0] is tensors[0]:
            return tensors[0]
    raise ModelContractError(f"the model returns a {type(output).__name__}, not logits (a tensor, a "
                             "tuple with the logits, a mapping with 'logits' or an object with .logits)",
                             reason="no_logits")


class FeatureExtractor(nn.Module):
    """Strategy turning a wrapped network into (features, head). Subclasses implement both."""

    head: nn.Linear

    def forward(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class TimmHeadExtractor(FeatureExtractor):
    """timm models: ``forward_head(forward_features(x), pre_logits=True)`` and ``get_classifier``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        head = net.get_classifier()
        if not isinstance(head, nn.Linear):
            raise ModelContractError(
                f"timm model {type(net).__name__} has classifier {type(head).__name__}, "
                "not an nn.Linear: the cross-class metric needs a final linear head", reason="no_linear_head"
            )
        object.__setattr__(self, "head", head)  # a reference, not a second registration

    def forward(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return net.forward_head(net.forward_features(x), pre_logits=True)


def pick_head(calls: Sequence[tuple[str, torch.Tensor]], output: object) -> str | None:
    """The name of the ``nn.Linear`` whose output *is* the logits in ``output`` (the network's raw
    output), from ``calls``: ``(layer name, its output)`` of every ``nn.Linear`` call of one forward,
    in call order. The same tensor object first, else (a ``view`` of it, real tensors) equal
    values; the last such call wins. ``None`` when no call produced the logits."""
    candidates = _logit_candidates(output, calls)
    for same in (lambda a, b: a is b, _view_of_each_other,
                 lambda a, b: (a.shape == b.shape and a.device.type != "meta"
                               and bool(torch.equal(a, b)))):
        for logits in candidates:
            for name, out in reversed(calls):
                if isinstance(out, torch.Tensor) and same(out, logits):
                    return name
    return None


def _view_of_each_other(a: torch.Tensor, b: torch.Tensor) -> bool:
    """``a`` and ``b`` hold the same elements as views of one tensor (works on ``meta`` tensors)."""
    if a.numel() != b.numel():
        return False
    base_a, base_b = a._base if a._base is not None else a, b._base if b._base is not None else b
    return base_a is base_b and a.storage_offset() == b.storage_offset()


def _logit_candidates(output: object, calls: Sequence[tuple[str, torch.Tensor]]) -> list[torch.Tensor]:
    """What the logits could be in ``output`` before K is known: ``logits_of`` without K, else with
    each called layer's width as K."""
    found = []
    for k in [None, *dict.fromkeys(o.shape[-1] for _, o in calls if isinstance(o, torch.Tensor))]:
        try:
            found.append(logits_of(output, k))
        except ModelContractError:
            continue
    return found


class _Capture:
    """The forward hook of one ``nn.Linear`` of a :class:`HookExtractor`: an object, not a closure,
    so a deep copy of the model (e.g. the scorer's folded copy) hooks into the copied extractor."""

    def __init__(self, extractor: HookExtractor, name: str) -> None:
        self.extractor, self.name = extractor, name

    def __call__(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        ex = self.extractor
        # Only while extracting: calls of the head outside `forward` (e.g. FeatureClassifier's
        # own head(features)) must not keep tensors, and their autograd graphs, alive.
        if ex._armed and (not ex._located or self.name == ex.head_name):
            ex._captured.append((self.name, inputs[0] if inputs else None, output))


class HookExtractor(FeatureExtractor):
    """Any model: the input of the ``nn.Linear`` that computes its logits, via forward hooks.

    The head is found from the computation, not from the order of registration: until the first
    forward every ``nn.Linear`` is watched, and the one whose output is the network's logits
    (:func:`pick_head`) becomes the head (an unused layer registered after it, a layer called
    earlier, a head inside a ``Sequential`` are all told apart). Before that forward, and for a
    network where no layer's output is the logits, ``head`` is the last ``nn.Linear`` in
    registration order (so the contract check names the cause). ``head_name`` fixes the head.
    """

    def __init__(self, net: nn.Module, head_name: str | None = None) -> None:
        super().__init__()
        linears = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear)]
        if head_name is not None:
            linears = [(n, m) for n, m in linears if n == head_name]
        if not linears:
            raise ModelContractError(
                f"model {type(net).__name__} has no nn.Linear layer"
                + (f" named {head_name!r}" if head_name else "")
                + ": the cross-class metric needs a final linear head (logits = W g(x) + b)",
                reason="no_linear_head",
            )
        self._linears = dict(linears)
        self._located = head_name is not None or len(linears) == 1
        self._captured: list[tuple[str, torch.Tensor, torch.Tensor]] = []
        self._armed = False
        self._set_head(linears[-1][0])
        for name, module in linears:
            module.register_forward_hook(self._hook_for(name))

    def _set_head(self, name: str) -> None:
        self.head_name = name
        object.__setattr__(self, "head", self._linears[name])  # a reference, not a registration

    def _hook_for(self, name: str) -> _Capture:
        return _Capture(self, name)

    def features_and_output(self, net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, object]:
        """``(features [B,D], raw output of net)`` from one forward of ``net`` on normalized ``x``
        (the first forward also finds the head)."""
        self._captured.clear()
        self._armed = True
        try:
            output = net(x)
        finally:
            self._armed = False
        if not self._located:
            found = pick_head([(n, out) for n, _, out in self._captured], output)
            if found is not None:
                self._set_head(found)
                self._located = True
            self._captured = [c for c in self._captured if c[0] == self.head_name]
        if not self._captured:
            raise ModelContractError(
                f"layer {self.head_name!r} was not called in forward: it is not the head"
            )
        feats = self._captured[-1][1]
        self._captured.clear()
        if feats.dim() != 2:
            raise ModelContractError(
                f"layer {self.head_name!r} receives a {feats.dim()}-D input {tuple(feats.shape)}, "
                "not [B,D] features: it is not a classification head"
            )
        return feats, output

    def forward(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return self.features_and_output(net, x)[0]


class FeatureClassifier(nn.Module):
    """Images in [0,1] → logits ``[B,K]``, with penultimate features ``[B,D]`` and a linear head.

    Args:
        net: the wrapped network (takes normalized input when ``normalize`` is given).
        extractor: how to get features and the head from ``net``.
        normalize: optional normalization applied first (so inputs are always in [0,1]).
        meta: free-form description (source string, architecture, ``randomized``) recorded in results.
    """

    def __init__(self, net: nn.Module, extractor: FeatureExtractor,
                 normalize: nn.Module | None = None, meta: dict | None = None) -> None:
        super().__init__()
        self.normalize = normalize if normalize is not None else nn.Identity()
        self.net = net
        self.extractor = extractor
        self.meta = dict(meta or {})

    @property
    def head(self) -> nn.Linear:
        """The final ``nn.Linear(D, K)``; ``head.weight`` is the W of the metric, ``[K,D]``."""
        return self.extractor.head

    @property
    def num_classes(self) -> int:
        return self.head.out_features

    @property
    def feature_dim(self) -> int:
        return self.head.in_features

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``g(x): [B,D]`` of ``x: [B,C,H,W]`` in [0,1]."""
        return self.extractor(self.net, self.normalize(x))

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits [B,K], features [B,D])`` from one pass."""
        feats = self.features(x)
        return self.head(feats), feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B,K]`` of ``x: [B,C,H,W]`` in [0,1]."""
        return self.head(self.features(x))

    def raw_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The wrapped network's own logits on ``x`` in [0,1] (its output through :func:`logits_of`)."""
        return logits_of(self.net(self.normalize(x)), self.num_classes)


def wrap_model(net: nn.Module, *, normalize: nn.Module | None = None,
               head_name: str | None = None, meta: dict | None = None) -> FeatureClassifier:
    """Adapt any ``nn.Module`` to a FeatureClassifier (timm API when present, else a hook on the
    last ``nn.Linear``, or the one named ``head_name``). Does not check the contract."""
    if head_name is None and hasattr(net, "forward_head") and hasattr(net, "get_classifier"):
        try:
            extractor: FeatureExtractor = TimmHeadExtractor(net)
        except ModelContractError:
            extractor = HookExtractor(net)
    else:
        extractor = HookExtractor(net, head_name)
    return FeatureClassifier(net, extractor, normalize=normalize, meta=meta)


def check_contract(model: FeatureClassifier, probe: torch.Tensor, atol: float = 1e-4,
                   rtol: float = 1e-4) -> float:
    """Check ``F.linear(features, W, b) == logits`` within one forward on ``probe [B,C,H,W]`` in [0,1].

    Runs in eval mode without gradients and restores the previous mode. Sets
    ``model.meta["randomized"]``: two forwards of the probe differ by more than the same tolerance
    (differences at the level of float rounding, e.g. from a head that re-normalizes its weight in
    place on every call or from non-deterministic GPU kernels, are not randomness). Returns the
    largest absolute difference of ``F.linear(features, W, b)`` and the logits; raises
    :class:`ModelContractError` naming the cause when the algebra does not hold.
    """
    _check_finite_weights(model)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x = model.normalize(probe)
            try:
                feats, output = _one_forward(model, x)
                logits = logits_of(output, model.num_classes)
                again = logits_of(model.net(x), model.num_classes)
            except ModelContractError:
                raise
            except Exception as err:  # noqa: BLE001 - any failure of user code on the probe
                raise ModelContractError(f"model failed on a probe batch {tuple(probe.shape)}: "
                                         f"{type(err).__name__}: {str(err)[:300]}",
                                         reason="probe_failed") from err
            if not bool(torch.isfinite(logits).all()):
                raise ModelContractError(
                    f"the model's logits on a probe batch {tuple(probe.shape)} hold NaN or inf although its "
                    "weights are finite (an overflow in the forward?)", reason="non_finite")
            model.meta["randomized"] = not torch.allclose(logits.float(), again.float(), atol=atol, rtol=rtol)
            return _check_head_algebra(model, feats, logits, atol, rtol)
    finally:
        model.train(was_training)


def _check_finite_weights(model: nn.Module) -> None:
    """Raise :class:`ModelContractError` (reason ``non_finite``) naming the first parameter or
    buffer holding NaN or inf: every later check would blame the model's structure instead."""
    tensors = [*model.named_parameters(), *model.named_buffers()]
    for name, t in tensors:
        if t.is_floating_point() or t.is_complex():
            bad = int((~torch.isfinite(t.detach())).sum())
            if bad:
                raise ModelContractError(
                    f"the weights hold NaN or inf: tensor {name!r} {tuple(t.shape)} has {bad} non-finite "
                    f"of {t.numel()} values (a damaged checkpoint or a diverged training run)",
                    reason="non_finite")


def _one_forward(model: FeatureClassifier, x: torch.Tensor) -> tuple[torch.Tensor, object]:
    """Features and raw output of one forward (timm's API computes them in two calls of the same
    deterministic path)."""
    extractor = model.extractor
    if isinstance(extractor, HookExtractor):
        return extractor.features_and_output(model.net, x)
    return extractor(model.net, x), model.net(x)


def _check_head_algebra(model: FeatureClassifier, feats: torch.Tensor, logits: torch.Tensor,
                        atol: float, rtol: float) -> float:
    head = model.head
    name = getattr(model.extractor, "head_name", "head")
    expected = F.linear(feats.float(), head.weight.float(), None if head.bias is None else head.bias.float())
    if logits.shape != expected.shape:
        raise ModelContractError(
            f"F.linear(features, W, b) of layer {name!r} has shape {tuple(expected.shape)} but the model "
            f"returns logits of shape {tuple(logits.shape)}: that layer is not the classifier head"
        )
    diff = (logits.float() - expected).abs().max().item()
    if torch.allclose(logits.float(), expected, atol=atol, rtol=rtol):
        return diff
    applied = head(feats)
    if type(head) is not nn.Linear and not torch.allclose(applied.float(), expected, atol=atol, rtol=rtol):
        raise ModelContractError(
            f"layer {name!r} is a {type(head).__name__} (a subclass of nn.Linear) that does not compute "
            f"F.linear(x, weight, bias) (differs by up to {diff:.3g}): its weight is not the W of "
            "logits = W g(x) + b, so the cross-class metric is undefined for it", reason="head_not_linear"
        )
    raise ModelContractError(
        f"F.linear(features, W, b) of layer {name!r} differs from the model's logits by up to {diff:.3g} "
        "in the same forward: the model changes the logits after that layer (e.g. softmax, scaling, "
        "averaging, another layer), so logits are not W g(x) + b and the cross-class metric is "
        "undefined for it", reason="output_transform"
    )
