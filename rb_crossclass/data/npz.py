"""``npz:<path>`` datasets: arrays ``x`` and ``y`` plus optional metadata, read without pickle.

File contents:

- ``x``: images, uint8 (``[N,H,W,C]``, ``[N,C,H,W]`` or ``[N,H,W]`` grayscale) or float in [0,1];
- ``y``: integer labels ``[N]`` in ``[0, K)``;
- optional metadata, in the npz or in a JSON file beside it named ``<stem>.json``:
  ``dataset`` (a name such as ``cifar10``), ``class_names`` (K strings), ``num_classes`` (K).

The class count K comes, in this order, from ``num_classes``, the length of ``class_names``, the
dataset name (``--dataset-name`` or the file's ``dataset``), and only then from the labels
(max + 1, with a warning: a first-N subset easily lacks the top class). Labels are checked against
K before anything is allocated per class. ``allow_pickle=False`` always: nothing in a data folder
can run code.
"""

from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.datasets import DatasetInfo, generic_info, known_dataset, normalization
from .errors import DatasetError

log = logging.getLogger(__name__)

# A label this large is not a class index (and K from it would allocate per-class sums of that size).
MAX_INFERRED_CLASSES = 100_000
META_KEYS = ("dataset", "class_names", "num_classes")


@dataclass
class NpzData:
    """The arrays of an npz dataset (``x`` as NCHW) and its metadata (``meta``: the keys of
    :data:`META_KEYS` that the file or its JSON sidecar holds)."""

    path: Path
    x: np.ndarray
    y: np.ndarray
    meta: dict = field(default_factory=dict)


def read_npz(path: str | Path) -> NpzData:
    """Read and check an npz dataset; :class:`DatasetError` naming the file for any problem."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"npz dataset not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as d:
            files = set(d.files)
            if "x" not in files or "y" not in files:
                raise DatasetError(f"{path}: needs arrays 'x' and 'y', found {sorted(files)[:10]}")
            x, y = d["x"], d["y"]
            meta = {k: d[k] for k in META_KEYS if k in files}
    except DatasetError:
        raise
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile) as err:
        raise DatasetError(f"{path}: not a readable npz file "
                           f"({type(err).__name__}: {str(err)[:200]})") from err
    meta = {k: _meta_value(path, k, v) for k, v in meta.items()}
    meta.update({k: v for k, v in _sidecar(path).items() if k not in meta})
    return NpzData(path, _images(path, x), _labels(path, y, len(x)), meta)


def _images(path: Path, x: np.ndarray) -> np.ndarray:
    if x.ndim == 3:  # N,H,W grayscale
        x = x[:, None]
    if x.ndim != 4:
        raise DatasetError(f"{path}: 'x' must have 3 or 4 dimensions, has shape {x.shape}")
    if x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    if min(x.shape[1:]) < 1:
        raise DatasetError(f"{path}: 'x' has an empty dimension, shape {x.shape}")
    if x.dtype == np.uint8:
        return x
    if not np.issubdtype(x.dtype, np.floating):
        raise DatasetError(f"{path}: 'x' must be uint8 or float images, has dtype {x.dtype}")
    if x.size and not np.isfinite(x).all():
        raise DatasetError(f"{path}: 'x' holds NaN or infinite pixels")
    if x.size and (x.min() < 0 or x.max() > 1):
        raise DatasetError(f"{path}: float images must lie in [0,1], found [{x.min():.3g}, {x.max():.3g}]")
    return x


def _labels(path: Path, y: np.ndarray, n: int) -> np.ndarray:
    if y.ndim != 1:
        raise DatasetError(f"{path}: 'y' must be a 1-D array of labels, has shape {y.shape}")
    if len(y) != n:
        raise DatasetError(f"{path}: 'x' has {n} images but 'y' has {len(y)} labels")
    if not np.issubdtype(y.dtype, np.integer):
        raise DatasetError(f"{path}: 'y' must be integer labels, has dtype {y.dtype}")
    if len(y) and int(y.min()) < 0:
        raise DatasetError(f"{path}: 'y' holds a negative label ({int(y.min())})")
    return y


def _meta_value(path: Path, key: str, value: np.ndarray):
    try:
        if key == "class_names":
            return [str(v) for v in np.asarray(value).reshape(-1).tolist()]
        item = np.asarray(value).reshape(-1)
        if item.size != 1:
            raise ValueError("not a single value")
        return int(item[0]) if key == "num_classes" else str(item[0])
    except (ValueError, TypeError) as err:
        raise DatasetError(f"{path}: metadata array {key!r} is malformed ({err})") from err


def sidecar_path(path: Path) -> Path:
    """The JSON metadata file of an npz dataset: ``<stem>.json`` beside it."""
    return path.with_suffix(".json")


def _sidecar(path: Path) -> dict:
    side = sidecar_path(path)
    if not side.is_file():
        return {}
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise DatasetError(f"{side}: not readable JSON metadata ({err})") from err
    if not isinstance(data, dict):
        raise DatasetError(f"{side}: metadata must be a JSON object with {', '.join(META_KEYS)}")
    out = {}
    if "dataset" in data:
        if not isinstance(data["dataset"], str):
            raise DatasetError(f"{side}: field 'dataset' must be a string")
        out["dataset"] = data["dataset"]
    if "class_names" in data:
        names = data["class_names"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise DatasetError(f"{side}: field 'class_names' must be a list of strings")
        out["class_names"] = names
    if "num_classes" in data:
        k = data["num_classes"]
        if isinstance(k, bool) or not isinstance(k, int):
            raise DatasetError(f"{side}: field 'num_classes' must be an integer")
        out["num_classes"] = k
    return out


def describe(data: NpzData, spec: str, dataset_name: str | None = None) -> DatasetInfo:
    """Facts of an npz dataset (see the module docstring for where K and class names come from).

    ``dataset_name`` declares what the file holds (e.g. ``cifar10``) and wins over the file's own
    ``dataset`` field. Raises :class:`DatasetError` when labels do not fit K or sources disagree.
    """
    name = dataset_name or data.meta.get("dataset")
    known = known_dataset(name) if name else None
    names = data.meta.get("class_names")
    if "num_classes" in data.meta:
        k, source = int(data.meta["num_classes"]), f"{data.path}: field 'num_classes'"
    elif names is not None:
        k, source = len(names), f"{data.path}: field 'class_names'"
    elif known is not None:
        k, source = known.num_classes, f"dataset name {name}"
    else:
        k, source = _inferred_k(data)
    inferred = source.endswith("(max + 1)")
    if not 1 <= k <= MAX_INFERRED_CLASSES:
        raise DatasetError(f"{data.path}: {source} gives {k} classes; need 1 to {MAX_INFERRED_CLASSES}")
    if names is not None and len(names) != k:
        raise DatasetError(f"{data.path}: {len(names)} class names but {k} classes ({source})")
    if known is not None and k != known.num_classes:
        raise DatasetError(f"{data.path}: {source} gives {k} classes but {name} has {known.num_classes}")
    top = int(data.y.max()) if len(data.y) else -1
    if top >= k:
        raise DatasetError(f"{data.path}: label {top} does not fit {k} classes (K from {source})")
    if names is None:
        names = list(known.class_names) if known is not None else None
    shape = tuple(int(s) for s in data.x.shape[1:])
    info = generic_info(name or spec, k, shape, class_names=tuple(names) if names else None,
                        num_classes_source=source, num_classes_inferred=inferred)
    if known is not None:
        mean, std = normalization(name, shape[0])
        info = DatasetInfo(info.name, k, info.class_names, shape, mean, std, source)
    return info


def _inferred_k(data: NpzData) -> tuple[int, str]:
    if not len(data.y):
        raise DatasetError(f"{data.path}: no labels, and no 'num_classes' / 'class_names' metadata")
    top = int(data.y.max())
    if top >= MAX_INFERRED_CLASSES:
        raise DatasetError(f"{data.path}: label {top} is not a class index (over {MAX_INFERRED_CLASSES}); "
                           "give 'num_classes' in the file if it really has that many classes")
    log.warning("%s: the class count %d is inferred from the labels (max + 1); a partial file may "
                "lack the top classes: declare --dataset-name or store 'num_classes' in the file",
                data.path, top + 1)
    return top + 1, f"{data.path}: inferred from its labels (max + 1)"
