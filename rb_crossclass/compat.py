"""Every ecosystem quirk of robustbench / pyautoattack / torch in one place.

Quirks handled here (each has a test in ``tests/test_compat.py``):

1. robustbench 1.1.1 does ``import autoattack`` but its dependency ``pyautoattack`` installs the
   package ``pyautoattack``. :func:`install_autoattack_alias` maps ``autoattack`` and every
   ``autoattack.<sub>`` module onto ``pyautoattack``.
2. robustbench imports ``pkg_resources``, removed in setuptools 81: :func:`check_setuptools`
   gives a clear error naming the fix.
3. ``robustbench.eval.benchmark`` passes ``log_path=`` to ``AutoAttack`` and ``bs=`` to
   ``run_standard_evaluation``; pyautoattack 0.2.0 rejects both (it wants ``batch_size=``, and
   returns ``(x_adv, y_adv)``). In 1.1.1 the AutoAttack part of ``benchmark`` is even commented
   out. :func:`make_autoattack` builds the attack with the keywords pyautoattack accepts and
   RobustBench's protocol (seed 0, version standard, inputs in [0,1]).
4. pyautoattack's ``state_path`` resume is broken (the attack set is saved with ``default=str``
   and reloads as a string): never pass ``state_path``; :data:`PYAUTOATTACK_STATE_RESUME_BROKEN`
   documents it and :func:`pyautoattack_state_roundtrip_ok` checks it.
5. The robustbench wheel ships neither ``model_info/`` nor the leaderboard template: official
   cards are read from a folder (:func:`official_cards_dir`); our package ships its own template.
6. torch / torchvision must come as the pinned pair (torch 2.14.1, torchvision 0.29.1 here):
   :func:`torch_versions_ok`.
7. ``robustbench.utils.load_model`` first looks up timm's registry under
   ``<name lowercased, '-'->'_'>_<dataset>_<threat model lowercased>`` with ``pretrained=True``:
   :func:`robustbench_timm_name` reproduces the rule, used to register zoo entries. For 10 entries
   (``Debenedetti2022Light_XCiT-*``, ``AlexNet``) the zoo's own callable names a timm model timm does
   not have, so only that registered name builds them.
8. Building zoo entries *without weights* (to plan which ones the cross-class metric applies to):
   some zoo callables call ``timm.create_model(..., pretrained=True)`` (``Tian2022Deeper_DeiT-*``)
   or ``torchvision.models.resnet50(pretrained=True)`` (``Standard_R50``) and would download, and
   ``bit_rn.ResNetV2`` (``Bai2023Improving_*``) calls ``Tensor.cuda()`` in its constructor, which
   fails on a machine without CUDA. :func:`no_pretrained_weights` and :func:`cuda_calls_are_noops`
   handle both (:func:`robustbench_offline_build` applies them together).
9. Mixing networks of the zoo (``Bai2023Improving_*``: ``CompositeModel``; ``Bai2024MixedNUTS``:
   ``NonLinMixedClassifier``) combine two classifiers per input; their forwards read tensor values
   (``.item()``) and so cannot run on the meta device. :data:`ROBUSTBENCH_MIXING_CLASSES` names
   their classes so a plan can recognise them without running them.
10. timm (1.0.9) decorates a class in ``timm/models/hrnet.py`` with ``torch.jit.interface``, which
    torch 2.14 deprecates: every ``import timm`` prints a FutureWarning (e.g. on every training
    run). :func:`import_timm` imports it with exactly that warning silenced.

Nothing here runs at import time; callers ask for what they need. The start-up hook that makes
a bare ``import robustbench`` work ships in the wheel (``rb_crossclass_autoattack_alias.pth``, see
:mod:`rb_crossclass._autoattack_alias`), in plain and editable installs alike.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import _autoattack_alias
from .core.errors import RBCrossclassError
from .core.threat import check_norm

PINNED_TORCH = "2.14.1"
PINNED_TORCHVISION = "0.29.1"
PYAUTOATTACK_STATE_RESUME_BROKEN = True
OFFICIAL_CARDS_ENV = "RB_CROSSCLASS_MODEL_INFO"
#: Classes of robustbench's mixing networks (two classifiers mixed per input; quirk 9).
ROBUSTBENCH_MIXING_CLASSES = frozenset({"CompositeModel", "CompositeModelWrapper", "NonLinMixedClassifier"})


class CompatError(RBCrossclassError, RuntimeError):
    """An installed package does not fit what rb-crossclass needs; the message says the fix."""


def install_autoattack_alias() -> None:
    """Let ``import autoattack`` (and its submodules) fall back to ``pyautoattack``. Idempotent.

    The same finder the wheel's start-up hook installs (:mod:`rb_crossclass._autoattack_alias`):
    a genuine ``autoattack`` installation (the original GitHub package) still wins; only a missing
    one is served by pyautoattack. Raises :class:`CompatError` when pyautoattack is not installed.
    """
    if importlib.util.find_spec("pyautoattack") is None:
        raise CompatError("pyautoattack is not installed: `pip install pyautoattack` (a dependency of "
                          "rb-crossclass)")
    _autoattack_alias.install()


def check_setuptools() -> None:
    """robustbench 1.1.1 needs ``pkg_resources`` (setuptools < 81)."""
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pkg_resources  # noqa: F401
    except ImportError as err:
        raise CompatError(
            "robustbench 1.1.1 imports pkg_resources, which setuptools>=81 removed; "
            "install 'setuptools<81' (see constraints.txt)"
        ) from err


def import_robustbench():
    """Import robustbench with every quirk handled; returns the ``robustbench`` module."""
    check_setuptools()
    install_autoattack_alias()
    import warnings

    if importlib.util.find_spec("autoattack.state") is None:
        origin = importlib.util.find_spec("autoattack").origin
        raise CompatError(
            f"the `autoattack` package at {origin} is not pyautoattack (torchattacks<3.5 ships a stale "
            "copy): upgrade with `pip install 'torchattacks>=3.5.1'`"
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import robustbench
        import robustbench.utils  # noqa: F401
    return robustbench


TIMM_JIT_WARNING = r"`torch\.jit\.interface` is deprecated"


def import_timm():
    """``import timm`` without torch's deprecation warning about timm's ``torch.jit.interface``
    (quirk 8; any other warning still shows). Returns the ``timm`` module."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=TIMM_JIT_WARNING, category=FutureWarning)
        import timm
        import timm.models  # noqa: F401 - hrnet is imported by timm.models
    return timm


def make_autoattack(
    model,
    *,
    norm: str,
    eps: float,
    version: str = "standard",
    attacks: list[str] | None = None,
    seed: int = 0,
    device: str = "cpu",
    verbose: bool = False,
):
    """Build a pyautoattack ``AutoAttack`` the way RobustBench's ``benchmark`` means to.

    RobustBench passes ``log_path=``, which pyautoattack 0.2.0 does not accept; logging goes
    through the ``auto-attack`` logger instead. ``attacks`` is only allowed with ``version='custom'``.
    """
    from pyautoattack import AutoAttack

    check_norm(norm)
    adversary = AutoAttack(
        model,
        norm=norm,
        eps=float(eps),
        version=version,
        attacks=list(attacks) if attacks is not None else None,
        seed=seed,
        device=device,
    )
    adversary.verbose = verbose
    return adversary


def pyautoattack_state_roundtrip_ok(tmp_dir: str | os.PathLike | None = None) -> bool:
    """True when pyautoattack's EvaluationState reloads its attack set as a set (the bug fixed)."""
    from pyautoattack.state import EvaluationState

    with tempfile.TemporaryDirectory(dir=tmp_dir) as d:
        path = Path(d) / "state.json"
        state = EvaluationState({"apgd-ce", "apgd-t"}, path=path)
        state.to_disk(force=True)
        try:
            reloaded = EvaluationState.from_disk(path)
        except Exception:  # noqa: BLE001 - any failure means resume is unusable
            return False
        return isinstance(reloaded.attacks_to_run, set)


def official_cards_dir(path: str | os.PathLike | None = None) -> Path:
    """Folder of official RobustBench cards (``<dataset>/<threat_model>/<Name>.json``).

    The robustbench wheel does not ship ``model_info/``: pass a folder, or set
    ``RB_CROSSCLASS_MODEL_INFO``. Raises with a clear message when neither points at one.
    """
    chosen = path if path is not None else os.environ.get(OFFICIAL_CARDS_ENV)
    if chosen is None:
        raise CompatError(
            "the robustbench package does not ship its model_info/ cards: pass the folder "
            f"(e.g. a clone's robustbench/model_info) or set {OFFICIAL_CARDS_ENV}"
        )
    folder = Path(chosen)
    if not folder.is_dir():
        raise CompatError(f"official cards folder not found: {folder}")
    return folder


def robustbench_ships_model_info() -> bool:
    """Whether the installed robustbench carries its ``model_info`` cards (1.1.1 does not)."""
    spec = importlib.util.find_spec("robustbench")
    if spec is None or spec.origin is None:
        return False
    root = Path(spec.origin).parent
    return any((p / "model_info").is_dir() for p in (root, root.parent))


def torch_versions_ok() -> tuple[bool, str]:
    """Whether torch / torchvision are the pinned pair; returns (ok, description)."""
    import torch
    import torchvision

    tv = torch.__version__.split("+")[0]
    vv = torchvision.__version__.split("+")[0]
    ok = tv == PINNED_TORCH and vv == PINNED_TORCHVISION
    return ok, f"torch {torch.__version__}, torchvision {torchvision.__version__}"


def robustbench_timm_name(model_name: str, dataset: str, threat_model: str) -> str:
    """The timm registry name robustbench's ``load_model`` tries first for a model."""
    return f"{model_name.lower().replace('-', '_')}_{dataset.lower()}_{threat_model.lower()}"


@contextlib.contextmanager
def no_pretrained_weights() -> Iterator[list[str]]:
    """While active, ``timm.create_model(..., pretrained=True)`` builds with random weights and
    torchvision's model builders ignore ``pretrained=`` / ``weights=`` (quirk 8). Yields the list
    of calls it changed (e.g. ``"timm.create_model('x', pretrained=True)"``); everything is
    restored on exit."""
    import timm
    import timm.models
    import torchvision.models as tvm

    changed: list[str] = []
    original = timm.create_model

    def create_model(model_name, pretrained=False, *args, **kwargs):
        if pretrained:
            changed.append(f"timm.create_model({model_name!r}, pretrained=True)")
        return original(model_name, False, *args, **kwargs)

    patches: list[tuple[Any, str, Any]] = [(timm, "create_model", create_model),
                                           (timm.models, "create_model", create_model)]
    for mod in list(sys.modules.values()):  # robustbench modules that imported the function itself
        if getattr(mod, "__name__", "").startswith("robustbench") and \
                getattr(mod, "create_model", None) is original:
            patches.append((mod, "create_model", create_model))

    def no_weights(name, builder):
        def build(*args, **kwargs):
            if kwargs.pop("pretrained", False) or kwargs.get("weights") is not None:
                changed.append(f"torchvision.models.{name}(weights)")
            kwargs["weights"] = None
            return builder(*args, **kwargs)
        return build

    for name in tvm.list_models(module=tvm):
        builder = getattr(tvm, name, None)
        if callable(builder):
            patches.append((tvm, name, no_weights(name, builder)))
    saved = [(obj, attr, getattr(obj, attr)) for obj, attr, _ in patches]
    try:
        for obj, attr, value in patches:
            setattr(obj, attr, value)
        yield changed
    finally:
        for obj, attr, value in reversed(saved):
            setattr(obj, attr, value)


@contextlib.contextmanager
def cuda_calls_are_noops() -> Iterator[None]:
    """On a machine without CUDA, ``Tensor.cuda()`` returns the tensor itself while active
    (``bit_rn.ResNetV2`` calls it in its constructor; quirk 8). With CUDA nothing changes."""
    import torch

    if torch.cuda.is_available():
        yield
        return
    original = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    try:
        yield
    finally:
        torch.Tensor.cuda = original


@contextlib.contextmanager
def robustbench_offline_build() -> Iterator[list[str]]:
    """Build zoo architectures without weights: :func:`no_pretrained_weights` and
    :func:`cuda_calls_are_noops` together; yields the list of calls changed."""
    import_robustbench()
    with no_pretrained_weights() as changed, cuda_calls_are_noops():
        yield changed
