"""Datasets as tensors under RobustBench's protocol: the first N points in file order.

:func:`open_split` reads a dataset spec once and returns its facts and tensors
(:class:`Split`); :func:`load_dataset` and :func:`dataset_info` are its two halves. Specs:

- ``cifar10``, ``cifar100``: torchvision's ``cifar-*-batches-py`` layout (downloaded when the
  network allows); the test split through RobustBench's own loaders (:mod:`.benchmark`), the
  training split through ``torchvision.datasets``;
- ``imagenet`` (test split only): RobustBench's 5,000-image validation subset (:mod:`.benchmark`);
- ``mnist``: torchvision's raw files (the test split needs only the two ``t10k`` files);
- ``npz:<path>`` (:mod:`.npz`) and ``sample:<name>`` (files shipped in the package, :mod:`.samples`).

Images come as ``x: [N,C,H,W]`` float32 in [0,1] and labels as ``y: [N]`` int64.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.datasets import KNOWN_DATASETS, DatasetInfo, known_dataset
from ..core.io import no_empty_folders_left
from .benchmark import cifar_missing, load_benchmark_test
from .errors import DatasetError
from .npz import describe, read_npz
from .samples import PREFIX as SAMPLE_PREFIX
from .samples import resolve_sample

DEFAULT_DATA_DIR = os.environ.get("RB_CROSSCLASS_DATA", "./data")
FILE_DATASETS = KNOWN_DATASETS  # every named dataset is read from files


@dataclass
class Split:
    """One split of a dataset: its facts and the first ``n`` points (``x [N,C,H,W]`` in [0,1],
    ``y [N]`` int64)."""

    info: DatasetInfo
    x: torch.Tensor
    y: torch.Tensor


def _check_spec(spec: str) -> None:
    if spec.startswith(("npz:", SAMPLE_PREFIX)) and len(spec.split(":", 1)[1]) > 0:
        return
    if spec not in FILE_DATASETS:
        raise DatasetError(f"unknown dataset {spec[:100]!r}: use {', '.join(FILE_DATASETS)}, npz:<path> "
                           "or sample:cifar10")


def _check_n(n_examples: int | None) -> None:
    if n_examples is not None and (isinstance(n_examples, bool) or n_examples < 1):
        raise DatasetError(f"the number of examples must be a positive integer, got {n_examples!r}")


def open_split(spec: str, split: str = "test", n_examples: int | None = None,
               data_dir: str | os.PathLike | None = None, *, dataset_name: str | None = None,
               download: bool = True, model_name: str | None = None, threat_model: str = "Linf") -> Split:
    """Read ``split`` of dataset ``spec`` once: facts and the first ``n_examples`` points.

    ``dataset_name`` declares what an ``npz:`` file holds (class names and K then come from that
    name). Asking for more points than the file holds is an error, never a silent truncation.
    ``model_name`` / ``threat_model`` (a RobustBench model) choose ImageNet's preprocessing.
    """
    _check_spec(spec)
    _check_n(n_examples)
    if split not in ("train", "test"):
        raise DatasetError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(data_dir or DEFAULT_DATA_DIR)
    spec = resolve_sample(spec)
    if spec.startswith("npz:"):
        data = read_npz(Path(spec[4:]))
        info, x, y = describe(data, spec, dataset_name), data.x, data.y
    else:
        if dataset_name not in (None, spec):
            raise DatasetError(f"--dataset-name {dataset_name} contradicts --dataset {spec}")
        if spec == "mnist":
            x, y = _load_mnist(split, root)
        elif split == "test":  # RobustBench's loaders apply the first-N protocol themselves
            x, y = load_benchmark_test(spec, n_examples, root, model_name, threat_model, download)
        elif spec == "imagenet":
            raise DatasetError("imagenet: only RobustBench's test subset is supported (no training split)")
        else:
            x, y = _load_cifar(spec, split, root, download)
        info = known_dataset(spec)
        top = int(y.max()) if len(y) else -1
        if top >= info.num_classes:
            raise DatasetError(f"{spec} files under {root} hold label {top}, but {spec} has "
                               f"{info.num_classes} classes")
    if n_examples is not None:
        if n_examples > len(y):
            raise DatasetError(f"{spec} ({split}) holds {len(y)} points, {n_examples} were requested")
        x, y = x[:n_examples], y[:n_examples]
    xt, yt = _to_tensors(x, y)
    return Split(info, xt, yt)


def load_dataset(spec: str, split: str = "test", n_examples: int | None = None,
                 data_dir: str | os.PathLike | None = None, download: bool = True,
                 dataset_name: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x [N,C,H,W] float32 in [0,1], y [N] int64)``: the first ``n_examples`` points of ``split``."""
    s = open_split(spec, split, n_examples, data_dir, dataset_name=dataset_name, download=download)
    return s.x, s.y


def dataset_info(spec: str, data_dir: str | os.PathLike | None = None,
                 dataset_name: str | None = None) -> DatasetInfo:
    """Facts of a dataset spec: named datasets from :mod:`rb_crossclass.core.datasets`, ``npz:``
    files from their metadata (the file is read)."""
    _check_spec(spec)
    spec = resolve_sample(spec)
    if spec.startswith("npz:"):
        return describe(read_npz(Path(spec[4:])), spec, dataset_name)
    return known_dataset(spec)


def _to_tensors(x, y) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(x, torch.Tensor):  # from robustbench's loaders: already float in [0,1]
        return x.float().contiguous(), torch.as_tensor(y, dtype=torch.int64)
    if x.dtype == np.uint8:
        xt = torch.from_numpy(np.array(x, order="C", copy=True)).float().div_(255.0)
    else:
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return xt, torch.from_numpy(np.asarray(y, dtype=np.int64))


def _load_cifar(name: str, split: str, root: Path, download: bool) -> tuple[np.ndarray, np.ndarray]:
    from torchvision import datasets

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    folder = "cifar-10-batches-py" if name == "cifar10" else "cifar-100-python"
    try:
        ds = cls(root=str(root), train=split == "train", download=False)
    except RuntimeError:
        if not download:
            raise DatasetError(cifar_missing(name, root, folder)) from None
        try:
            with no_empty_folders_left(root):
                ds = cls(root=str(root), train=split == "train", download=True)
        except Exception as err:  # noqa: BLE001 - network errors come in many types
            raise DatasetError(cifar_missing(name, root, folder) + f" (download failed: {err})") from err
    return ds.data.transpose(0, 3, 1, 2), np.asarray(ds.targets)


def _load_mnist(split: str, root: Path) -> tuple[np.ndarray, np.ndarray]:
    prefix = "t10k" if split == "test" else "train"
    raw = _find_mnist_raw(root)
    images = _read_idx(raw, f"{prefix}-images-idx3-ubyte", 16)
    labels = _read_idx(raw, f"{prefix}-labels-idx1-ubyte", 8)
    n = len(labels)
    if images.size != n * 28 * 28:
        raise DatasetError(f"{raw}: {prefix} images hold {images.size} bytes, expected {n}x28x28")
    return images.reshape(n, 1, 28, 28), labels.astype(np.int64)


def _find_mnist_raw(root: Path) -> Path:
    for cand in (root / "MNIST" / "raw", root / "raw", root):
        if (cand / "t10k-labels-idx1-ubyte.gz").exists() or (cand / "t10k-labels-idx1-ubyte").exists():
            return cand
    return root / "MNIST" / "raw"


def _read_idx(raw: Path, stem: str, offset: int) -> np.ndarray:
    for path, opener in ((raw / stem, open), (raw / f"{stem}.gz", gzip.open)):
        if path.is_file():
            try:
                with opener(path, "rb") as f:
                    data = f.read()
            except (OSError, EOFError) as err:
                raise DatasetError(f"{path}: unreadable MNIST file ({err})") from err
            if len(data) < offset:
                raise DatasetError(f"{path}: truncated MNIST file ({len(data)} bytes)")
            return np.frombuffer(data, dtype=np.uint8, offset=offset)
    raise DatasetError(
        f"MNIST file {stem}(.gz) not found in {raw}: put torchvision's MNIST/raw files there "
        f"or pass --data-dir"
    )


def shared_data_dir() -> Path | None:
    """``../shared/data`` next to the repository (or ``RB_CROSSCLASS_SHARED``), when present."""
    env = os.environ.get("RB_CROSSCLASS_SHARED")
    candidates = [Path(env) / "data"] if env else []
    here = Path(__file__).resolve().parent.parent.parent
    candidates += [here.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for c in candidates:
        if c.is_dir():
            return c
    return None
