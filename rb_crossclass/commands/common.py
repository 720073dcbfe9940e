"""CLI arguments shared by subcommands (model source, dataset, threat model, compute, figures),
checked at parse time, and their translation into the library's objects (:func:`model_spec`,
:func:`compute_settings`, :func:`figure_style`).

Nothing heavy is imported at module level (``rb-crossclass --help`` stays fast): torch, numpy and
matplotlib come with the library functions a command calls, imported inside the functions.
The argument types check against :mod:`rb_crossclass.core`'s torch-free vocabulary (ε, dataset
names, model IDs, :mod:`~rb_crossclass.core.values`), taken from its lazy exports.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core import (
    KNOWN_DATASETS,
    NORMS,
    RBCrossclassError,
    ThreatModelError,
    check_attack_eps,
    check_dataset_label,
    check_eps,
    check_model_id,
    check_output_dir_path,
    check_output_file_path,
    default_eps,
    format_eps,
    parse_eps,
    parse_int,
    parse_non_negative_float,
    parse_percent,
    parse_venue,
)

if TYPE_CHECKING:
    from ..crossclass import ComputeSettings
    from ..figures import FigureStyle
    from ..models import ModelSpec


# --------------------------------------------------------------------------- argument types
def arg_type(check: Callable[[str], Any]) -> Callable[[str], Any]:
    """``check`` as an argparse type: a library error becomes argparse's one-line error."""
    @functools.wraps(check)
    def checked(text: str) -> Any:
        try:
            return check(text)
        except RBCrossclassError as err:
            raise argparse.ArgumentTypeError(str(err)) from err
    return checked


int_arg = arg_type(parse_int)


@arg_type
def positive_int(text: str) -> int:
    """An integer >= 1 (argparse type)."""
    return parse_int(text, minimum=1)


@arg_type
def non_negative_int(text: str) -> int:
    """An integer >= 0 (argparse type)."""
    return parse_int(text, minimum=0)


non_negative_float = arg_type(parse_non_negative_float)
percent_arg = arg_type(parse_percent)
venue_arg = arg_type(parse_venue)


@arg_type
def dpi_arg(text: str) -> int:
    """A figure resolution in dots per inch, 20 to 1200 (argparse type)."""
    from ..figures import FigureStyle

    return FigureStyle(dpi=positive_int(text)).dpi


@arg_type
def eps_arg(text: str) -> float:
    """ε as ``8/255`` or ``0.0314`` (argparse type; finite, >= 0)."""
    return parse_eps(text)


@arg_type
def attack_eps_arg(text: str) -> float:
    """ε of an attack: as :func:`eps_arg`, and > 0 (argparse type)."""
    return check_attack_eps(parse_eps(text))


@arg_type
def eps_string_arg(text: str) -> str:
    """ε kept in RobustBench's string form (``8/255``, ``0.5``) for cards, > 0 (argparse type)."""
    check_attack_eps(parse_eps(text))
    return format_eps(text)


@arg_type
def device_arg(text: str) -> str:
    """A device string that exists on this machine (argparse type)."""
    from ..core import resolve_device  # torch: only when the flag is given

    resolve_device(text)
    return text


output_dir_arg = arg_type(check_output_dir_path)
output_file_arg = arg_type(check_output_file_path)
dataset_label = arg_type(check_dataset_label)


@arg_type
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
