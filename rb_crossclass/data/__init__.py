"""The data stage: datasets as ``[N,C,H,W]`` tensors in [0,1] under RobustBench's first-N protocol,
their facts, and training views with augmentation.

- :func:`open_split` / :func:`load_dataset` / :func:`dataset_info` (:mod:`.loaders`): cifar10,
  cifar100, mnist and ``npz:<path>`` files (:mod:`.npz`, metadata and checks);
- :func:`train_loader` (:mod:`.augment`): the standard CIFAR crop + flip augmentation.
"""

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

__all__ = [
    "AugmentedDataset",
    "CIFAR100_CLASSES",
    "CIFAR10_CLASSES",
    "DEFAULT_DATA_DIR",
    "DatasetError",
    "DatasetInfo",
    "MNIST_CLASSES",
    "Split",
    "dataset_info",
    "load_dataset",
    "open_split",
    "shared_data_dir",
    "train_loader",
]

if TYPE_CHECKING:
    from ..core.datasets import CIFAR10_CLASSES, CIFAR100_CLASSES, MNIST_CLASSES, DatasetInfo
    from .augment import AugmentedDataset, train_loader
    from .errors import DatasetError
    from .loaders import DEFAULT_DATA_DIR, Split, dataset_info, load_dataset, open_split, shared_data_dir

lazy_exports(__name__)
