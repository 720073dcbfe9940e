"""Small real datasets shipped inside the package, as ``sample:<name>`` dataset specs.

``sample:cifar10`` is ``rb_crossclass/data/samples/cifar10.npz``: the first 100 CIFAR-10 test
images (uint8 NHWC, torchvision's order, so RobustBench's first-N protocol holds for N <= 100) with
their labels and metadata (``dataset``, ``class_names``, ``num_classes``); provenance in
``samples/README.md``. It lets the demo and the README's examples score a real model on real
images on a machine with no dataset and no network.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .errors import DatasetError

PREFIX = "sample:"


def sample_names() -> list[str]:
    """The names of the shipped samples (``cifar10``)."""
    folder = resources.files("rb_crossclass") / "data" / "samples"
    return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".npz"))


def sample_path(name: str) -> Path:
    """The npz file of ``sample:<name>``; :class:`DatasetError` listing the samples otherwise."""
    if name not in sample_names():
        raise DatasetError(f"no shipped sample {name[:60]!r}: use one of "
                           + ", ".join(PREFIX + n for n in sample_names()))
    return Path(str(resources.files("rb_crossclass") / "data" / "samples" / f"{name}.npz"))


def resolve_sample(spec: str) -> str:
    """``sample:<name>`` → ``npz:<path of the shipped file>``; any other spec unchanged."""
    return f"npz:{sample_path(spec[len(PREFIX):])}" if spec.startswith(PREFIX) else spec
