"""``py:<module>:<callable>``: any user model. The callable returns an ``nn.Module`` taking [0,1]
images; it receives ``num_classes`` / ``dataset`` (and ``extra`` options) when it declares them.
``<module>`` is a dotted module name or a ``.py`` file path."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path

from torch import nn

from ..checkpoint import torch_error_text
from ..feature_classifier import FeatureClassifier, wrap_model
from .registry import ModelSourceError, SourceOptions, register_source


@register_source("py")
def py_source(target: str, opts: SourceOptions) -> FeatureClassifier:
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise ModelSourceError(f"py source must be py:<module>:<callable>, got py:{target[:100]}")
    module = _import(module_name, target)
    fn = getattr(module, attr, None)
    if fn is None or not callable(fn):
        raise ModelSourceError(f"py:{target}: module {module_name!r} has no callable {attr!r}")
    accepted = _accepted_kwargs(fn)
    candidates = {"num_classes": opts.num_classes, "dataset": opts.dataset, **opts.extra}
    try:
        net = fn(**{k: v for k, v in candidates.items() if k in accepted or "**" in accepted})
    except Exception as err:  # noqa: BLE001 - user code: any failure is reported, not raised through
        raise ModelSourceError(f"py:{target}: calling {attr}() failed: {type(err).__name__}: "
                               f"{torch_error_text(err)}") from err  # e.g. its own torch.load
    if not isinstance(net, nn.Module):
        raise ModelSourceError(f"py:{target} returned {type(net).__name__}, not an nn.Module")
    if isinstance(net, FeatureClassifier):
        return net
    meta = {"architecture": type(net).__name__, "family": "py", "input_shape": opts.input_shape}
    return wrap_model(net, head_name=opts.head_name, meta=meta)


def _import(module_name: str, target: str):
    if module_name.endswith(".py") or os.sep in module_name:
        return _import_file(Path(module_name), target)
    try:
        return importlib.import_module(module_name)
    except Exception as err:  # noqa: BLE001 - ImportError, SyntaxError, errors at import time
        raise ModelSourceError(f"py:{target}: cannot import module {module_name!r}: "
                               f"{type(err).__name__}: {str(err)[:300]}") from err


def _accepted_kwargs(fn: Callable) -> set[str]:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return set()
    names = {p.name for p in params}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        names.add("**")
    return names


def _import_file(path: Path, target: str):
    if not path.is_file():
        raise ModelSourceError(f"py source file not found: {path}")
    name = f"_rb_crossclass_user_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelSourceError(f"py:{target}: {path} cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - SyntaxError and anything the file raises on import
        sys.modules.pop(name, None)
        raise ModelSourceError(f"py:{target}: importing {path} failed: {type(err).__name__}: "
                               f"{str(err)[:300]}") from err
    return module
