"""RobustBench's test splits, read by RobustBench's own loaders (``robustbench.data``).

- ``cifar10`` / ``cifar100``: ``load_cifar10`` / ``load_cifar100`` — torchvision's files under the
  data folder (downloaded by torchvision when missing and the network allows), the first N test
  points in file order, ``ToTensor`` (so ``x`` is exactly ``uint8 / 255``);
- ``imagenet``: ``load_imagenet`` — RobustBench's fixed 5,000-image subset of the ILSVRC-2012
  validation set, listed in robustbench's ``helper_files/imagenet_test_image_ids.txt``, read from
  ``<data_dir>/val/<wnid>/<file>.JPEG`` (all 1,000 class folders: the label is the folder's index
  in sorted order) and preprocessed as RobustBench does for the model (``Res256Crop224`` unless
  the model's zoo entry says otherwise). ImageNet cannot be downloaded: a missing folder or image
  is one clear error before any work.

Images come back as ``x: [N,C,H,W]`` float32 in [0,1] and ``y: [N]`` int64.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..core.io import no_empty_folders_left
from .errors import DatasetError

IMAGENET_SUBSET = 5000
IMAGENET_CLASSES = 1000


def load_benchmark_test(name: str, n_examples: int | None, data_dir: Path,
                        model_name: str | None = None, threat_model: str = "Linf",
                        download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n_examples`` test points of ``name`` (``cifar10``, ``cifar100``, ``imagenet``)
    through robustbench's loaders; ``model_name`` (a RobustBench model ID) picks ImageNet's
    preprocessing. Raises :class:`DatasetError` with where to put the files when they are missing."""
    from ..compat import import_robustbench

    import_robustbench()
    from robustbench import data as rb_data

    if name == "imagenet":
        return _imagenet(rb_data, n_examples, data_dir, model_name, threat_model)
    folder = "cifar-10-batches-py" if name == "cifar10" else "cifar-100-python"
    if not (data_dir / folder).is_dir() and not download:
        raise DatasetError(cifar_missing(name, data_dir, folder))
    loader = rb_data.load_cifar10 if name == "cifar10" else rb_data.load_cifar100
    try:
        with no_empty_folders_left(data_dir):  # a failed download leaves no empty data folder
            x, y = loader(n_examples, str(data_dir))
    except Exception as err:  # noqa: BLE001 - torchvision's download raises many types offline
        raise DatasetError(cifar_missing(name, data_dir, folder) + f" ({type(err).__name__}: "
                           f"{str(err)[:200]})") from err
    return x.float(), y.long()


def cifar_missing(name: str, root: Path, folder: str) -> str:
    return (f"{name} not found under {root}: put torchvision's '{folder}/' folder there "
            f"(all batch files, md5-checked) or pass --data-dir; offline, a partial copy in "
            f"npz form can be used as npz:<path>")


def _imagenet(rb_data, n_examples: int | None, data_dir: Path, model_name: str | None,
              threat_model: str) -> tuple[torch.Tensor, torch.Tensor]:
    n = IMAGENET_SUBSET if n_examples is None else n_examples
    if n > IMAGENET_SUBSET:
        raise DatasetError(f"imagenet: RobustBench's subset holds {IMAGENET_SUBSET} validation images, "
                           f"{n} were requested")
    val = data_dir / "val"
    wanted = imagenet_subset_files(n)
    missing = ([] if val.is_dir() else [val]) or [val / f for f in wanted if not (val / f).is_file()]
    n_classes = sum(1 for p in val.iterdir() if p.is_dir()) if val.is_dir() else 0
    if missing or n_classes != IMAGENET_CLASSES:
        what = (f"{len(missing)} of the first {n} images of RobustBench's subset are missing "
                f"(e.g. {missing[0]})" if missing else f"{val} has {n_classes} class folders, not 1000")
        raise DatasetError(
            f"imagenet: {what}. ImageNet cannot be downloaded automatically: get the ILSVRC-2012 "
            f"validation images from image-net.org and sort them into {val}/<wnid>/ (the usual "
            "'val' layout with all 1000 class folders), or pass --data-dir")
    prepr = imagenet_preprocessing(model_name, threat_model)
    import warnings

    try:
        with warnings.catch_warnings():  # robustbench asks for 4 loader workers on any machine
            warnings.simplefilter("ignore", UserWarning)
            x, y = rb_data.load_imagenet(n, str(data_dir), prepr)
    except (OSError, RuntimeError) as err:
        raise DatasetError(f"imagenet: reading {val} failed "
                           f"({type(err).__name__}: {str(err)[:200]})") from err
    return x.float(), y.long()


def imagenet_preprocessing(model_name: str | None, threat_model: str = "Linf"):
    """The transform RobustBench applies to ImageNet images for ``model_name`` (its zoo entry's
    ``preprocessing``, or timm's data config for zoo models registered in timm), and
    ``Res256Crop224``, RobustBench's default, for any other model."""
    from ..compat import import_robustbench

    import_robustbench()
    from robustbench import data as rb_data
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    if model_name is not None:
        try:
            return rb_data.get_preprocessing(BenchmarkDataset.imagenet, ThreatModel(threat_model),
                                             model_name, None)
        except (KeyError, ValueError):  # not a model of RobustBench's ImageNet zoo: the default
            pass
    return rb_data.PREPROCESSINGS["Res256Crop224"]


def preprocessing_key(dataset: str, model_name: str | None, threat_model: str = "Linf") -> str:
    """Which input pipeline a model of ``dataset`` gets, as a string: models with the same key get
    the same tensors. ImageNet: the transform of :func:`imagenet_preprocessing` (its ``repr``:
    resize, crop, interpolation); every other dataset has one pipeline (``ToTensor``)."""
    if dataset != "imagenet":
        return "ToTensor"
    return " ".join(repr(imagenet_preprocessing(model_name, threat_model)).split())


def imagenet_subset_files(n: int) -> list[str]:
    """The first ``n`` entries (``<wnid>/<file>.JPEG``) of RobustBench's ImageNet test subset."""
    from importlib import resources

    text = resources.files("robustbench").joinpath("helper_files/imagenet_test_image_ids.txt")
    return [line.strip() for line in text.read_text(encoding="utf-8").splitlines()[:n] if line.strip()]
