"""The data stage: datasets as ``[N,C,H,W]`` tensors in [0,1] under RobustBench's first-N protocol,
their facts, and training views with augmentation.

- :func:`open_split` / :func:`load_dataset` / :func:`dataset_info` (:mod:`.loaders`): cifar10,
  cifar100, mnist and ``npz:<path>`` files (:mod:`.npz`, metadata and checks);
- :func:`train_loader` (:mod:`.augment`): the standard CIFAR crop + flip augmentation.
"""

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

lazy_exports(__name__, {
    "CIFAR10_CLASSES": "..core.datasets",
    "CIFAR100_CLASSES": "..core.datasets",
    "MNIST_CLASSES": "..core.datasets",
    "DatasetInfo": "..core.datasets",
    "AugmentedDataset": ".augment",
    "train_loader": ".augment",
    "DatasetError": ".errors",
    "DEFAULT_DATA_DIR": ".loaders",
    "Split": ".loaders",
    "dataset_info": ".loaders",
    "load_dataset": ".loaders",
    "open_split": ".loaders",
    "shared_data_dir": ".loaders",
})
