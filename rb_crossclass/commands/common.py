"""CLI arguments shared by subcommands (model source, dataset, threat model, compute, figures),
checked at parse time, and their translation into the library's objects (:func:`model_spec`,
:func:`compute_settings`, :func:`figure_style`).

Nothing heavy is imported at module level (``rb-crossclass --help`` stays fast): torch, numpy and
matplotlib come with the library functions a command calls, imported inside the functions.
``core`` modules are the exception to the commands' import rule (``tests/test_architecture.py``):
they are the torch-free vocabulary (ε, dataset names, model IDs) the argument types check against.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core.datasets import KNOWN_DATASETS
from ..core.errors import RBCrossclassError
from ..core.io import dangerous_output_dir
from ..core.names import check_model_id
from ..core.threat import (
    NORMS,
    ThreatModelError,
    check_attack_eps,
    check_eps,
    default_eps,
    format_eps,
    parse_eps,
)

if TYPE_CHECKING:
    from ..crossclass import ComputeSettings
    from ..figures import FigureStyle
    from ..models import ModelSpec


# --------------------------------------------------------------------------- argument types
def _arg_type(check: Callable[[str], Any]) -> Callable[[str], Any]:
    """``check`` as an argparse type: a library error becomes argparse's one-line error."""
    @functools.wraps(check)
    def arg_type(text: str) -> Any:
        try:
            return check(text)
        except RBCrossclassError as err:
            raise argparse.ArgumentTypeError(str(err)) from err
    return arg_type


def int_arg(text: str) -> int:
    """A whole number written in ASCII digits, optionally signed (argparse type). ``int()`` alone
    also takes other scripts' digits ('８') and underscores ('1_0')."""
    if not re.fullmatch(r"\s*[+-]?[0-9]{1,30}\s*", text):
        raise argparse.ArgumentTypeError(f"must be a whole number in ASCII digits, got {text[:40]!r}")
    return int(text)


def positive_int(text: str) -> int:
    """An integer >= 1 (argparse type)."""
    value = int_arg(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (argparse type)."""
    value = int_arg(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def percent_arg(text: str) -> str:
    """An accuracy in percent, 0-100, as RobustBench writes it in cards (``53.4`` → ``"53.40"``)."""
    try:
        if not re.fullmatch(r"[0-9]{1,3}(\.[0-9]*)?|\.[0-9]+", text.strip().rstrip("%")):
            raise ValueError(text)
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a percentage such as 53.42, got {text[:40]!r}") from None
    if not 0.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 100 (a percentage), got {text[:40]!r}")
    return f"{value:.2f}"


def venue_arg(text: str) -> str:
    """A venue as RobustBench writes it, ``Venue Year`` (``ICML 2025``): its bibtex tool takes the
    year from the last word (argparse type)."""
    words = text.split()
    if not words or not re.fullmatch(r"(19|20)\d\d", words[-1].strip(",.")):
        raise argparse.ArgumentTypeError(f"must end with the year, like 'ICML 2025' (RobustBench's form), "
                                         f"got {text[:60]!r}")
    return " ".join(words)


@_arg_type
def dpi_arg(text: str) -> int:
    """A figure resolution in dots per inch, 20 to 1200 (argparse type)."""
    from ..figures import FigureStyle

    return FigureStyle(dpi=positive_int(text)).dpi


@_arg_type
def eps_arg(text: str) -> float:
    """ε as ``8/255`` or ``0.0314`` (argparse type; finite, >= 0)."""
    return parse_eps(text)


@_arg_type
def attack_eps_arg(text: str) -> float:
    """ε of an attack: as :func:`eps_arg`, and > 0 (argparse type)."""
    return check_attack_eps(parse_eps(text))


@_arg_type
def eps_string_arg(text: str) -> str:
    """ε kept in RobustBench's string form (``8/255``, ``0.5``) for cards, > 0 (argparse type)."""
    check_attack_eps(parse_eps(text))
    return format_eps(text)


@_arg_type
def device_arg(text: str) -> str:
    """A device string that exists on this machine (argparse type)."""
    from ..core.runtime import resolve_device  # torch: only when the flag is given

    resolve_device(text)
    return text


def output_dir_arg(text: str) -> str:
    """A folder to write into: not empty, not an existing file, not the file system's root, a
    system folder or the home folder itself (argparse type)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty: name a folder")
    danger = dangerous_output_dir(text)
    if danger:
        raise argparse.ArgumentTypeError(f"{text[:200]} is {danger}, never an output folder: name a "
                                         "folder of its own (e.g. ./out)")
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text[:200]} exists and is not a folder")
    return text


def output_file_arg(text: str) -> str:
    """A file to write: not empty, not an existing folder (argparse type)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty: name a file")
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text[:200]} is a folder, not a file")
    return text


def dataset_label(text: str) -> str:
    """A dataset name as cards write it: lower-case letters, digits and ``_`` (argparse type)."""
    if not re.fullmatch(r"[a-z0-9_]{1,32}", text):
        raise argparse.ArgumentTypeError(f"must be 1-32 lower-case letters, digits or '_', got {text[:40]!r}")
    return text


@_arg_type
def model_id_arg(text: str) -> str:
    """A model ID usable as a file name (argparse type)."""
    return check_model_id(text)


# --------------------------------------------------------------------------- argument groups
def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", required=True, metavar="SRC",
                   help="timm:<name> | robustbench:<Name> | zoo:<Name> | py:<module>:<callable>")
    g.add_argument("--checkpoint", metavar="PATH",
                   help="weights: .safetensors or a torch file (loaded with weights_only=True)")
    g.add_argument("--num-classes", type=positive_int, default=None,
                   help="classes of the model (default: the dataset's)")
    g.add_argument("--img-size", type=positive_int, default=None, help="input size (default: the dataset's)")
    g.add_argument("--no-cifar-stem", action="store_true",
                   help="keep timm's ImageNet stem for small inputs")
    g.add_argument("--model-dir", default="./models", help="robustbench checkpoint folder")
    g.add_argument("--head", default=None, metavar="NAME",
                   help="name of the final nn.Linear when it is not the last one")


def add_data_args(p: argparse.ArgumentParser, n_default: int | None = None) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", required=True,
                   help="cifar10 | cifar100 | imagenet (RobustBench's 5,000-image subset) | mnist | "
                   "npz:PATH | sample:cifar10 (the first 100 CIFAR-10 test images, shipped in the package)")
    g.add_argument("--dataset-name", default=None, choices=KNOWN_DATASETS, metavar="NAME",
                   help="what an npz file holds (cifar10, cifar100, mnist, imagenet): its class names, "
                   "normalization and the card's dataset come from it")
    g.add_argument("--data-dir", default=None, help="folder holding the dataset files")
    g.add_argument("--n-examples", type=positive_int, default=n_default,
                   help="first N test points (RobustBench protocol)")


def add_threat_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("threat model")
    g.add_argument("--threat-model", default="Linf", choices=NORMS)
    g.add_argument("--eps", type=attack_eps_arg, default=None, help="8/255 or 0.0314 (default: 8/255 "
                   "for Linf, 0.5 for L2)")


def add_device_args(p: argparse.ArgumentParser, batch_help: str | None = None,
                    bf16_help: str = "bf16 autocast (refused on hardware without native bf16)") -> None:
    g = p.add_argument_group("compute")
    g.add_argument("--device", type=device_arg, default=None,
                   help="cpu | cuda | cuda:N (default: cuda if available)")
    g.add_argument("--batch-size", type=positive_int, default=None, help=batch_help)
    g.add_argument("--seed", type=int_arg, default=0,
                   help="seeds the attack's random starts and any weights the model source draws (an "
                   "untrained timm: model is the same network for the same seed); default 0")
    g.add_argument("--bf16", action="store_true", help=bf16_help)
    g.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="channels_last memory format (default: on for convolutional models on CPU and "
                   "CUDA where the scorer runs, off elsewhere)")


def add_figure_args(p: argparse.ArgumentParser) -> None:
    from ..figures import FORMATS

    g = p.add_argument_group("figures")
    g.add_argument("--format", dest="figure_format", choices=FORMATS, default="png",
                   help="file format of the figures (default png)")
    g.add_argument("--dpi", type=dpi_arg, default=None,
                   help="figure resolution, 20-1200 (default: each plot's own, about 110)")


def figure_style(args: argparse.Namespace) -> FigureStyle:
    """``--format`` and ``--dpi`` as a :class:`~rb_crossclass.figures.FigureStyle`."""
    from ..figures import FigureStyle

    return FigureStyle(format=args.figure_format, dpi=args.dpi)


def model_spec(args: argparse.Namespace) -> ModelSpec:
    """The model flags (:func:`add_model_args`, ``--seed``) as a :class:`~rb_crossclass.models.ModelSpec`."""
    from ..models import ModelSpec

    return ModelSpec(source=args.model, checkpoint=args.checkpoint, num_classes=args.num_classes,
                     img_size=args.img_size, cifar_stem=False if args.no_cifar_stem else None,
                     model_dir=args.model_dir, head=args.head, seed=int(getattr(args, "seed", 0) or 0))


def compute_settings(args: argparse.Namespace, **more: Any) -> ComputeSettings:
    """The compute flags (:func:`add_device_args`; ``--device`` unset = CUDA when available) and
    ``more`` fields (e.g. ``compile``) as a :class:`~rb_crossclass.crossclass.ComputeSettings`."""
    from ..crossclass import ComputeSettings

    return ComputeSettings(device=args.device, bf16=bool(args.bf16), channels_last=args.channels_last,
                           batch_size=args.batch_size, **more)


def resolve_eps(args: argparse.Namespace) -> float:
    """``--eps``, else RobustBench's default for ``--threat-model``."""
    if args.eps is None:
        return default_eps(args.threat_model)
    try:
        return check_eps(args.eps, args.threat_model)
    except ThreatModelError as err:
        raise ThreatModelError(f"--eps: {err}") from None


# --------------------------------------------------------------------------- deprecated
def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"rb_crossclass.commands.common.{old} is deprecated: use {new}", DeprecationWarning,
                  stacklevel=3)


def read_test_split(args: argparse.Namespace):  # noqa: ANN201 - returns rb_crossclass.data.Split
    """Deprecated: :func:`rb_crossclass.data.open_split` with the flags' values."""
    from ..data import open_split

    _deprecated("read_test_split", "rb_crossclass.data.open_split")
    rb_name = args.model.split(":", 1)[1] if args.model.startswith("robustbench:") else None
    return open_split(args.dataset, "test", args.n_examples, args.data_dir, dataset_name=args.dataset_name,
                      model_name=rb_name,
                      threat_model=getattr(args, "threat_model", "Linf"))


def build_model(args: argparse.Namespace, info, threat_model: str | None = None):  # noqa: ANN001, ANN201
    """Deprecated: :func:`rb_crossclass.models.build_model_for_data`."""
    from ..models import build_model_for_data

    _deprecated("build_model", "rb_crossclass.models.build_model_for_data")
    return build_model_for_data(model_spec(args), info, threat_model or getattr(args, "threat_model", "Linf"))


def reconcile_classes(model, info, dataset: str):  # noqa: ANN001, ANN201
    """Deprecated: :func:`rb_crossclass.models.reconcile_classes`."""
    from ..models import reconcile_classes as reconcile

    _deprecated("reconcile_classes", "rb_crossclass.models.reconcile_classes")
    return reconcile(model, info, dataset)


def prepare_for_device(model, device, channels_last: bool = False):  # noqa: ANN001, ANN201
    """Deprecated: :func:`rb_crossclass.models.prepare_for_device`."""
    from ..models import prepare_for_device as prepare

    _deprecated("prepare_for_device", "rb_crossclass.models.prepare_for_device")
    return prepare(model, device, channels_last)
