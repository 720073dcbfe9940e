"""Dataset facts: the one place that knows what a dataset name means.

A :class:`DatasetInfo` gives a dataset's number of classes ``num_classes`` (K), its
``class_names``, the input ``shape`` ``(C, H, W)`` of its images and the per-channel ``mean`` /
``std`` used by the normalization layer of models we build. :func:`known_dataset` returns the facts
of the named datasets (:data:`KNOWN_DATASETS`); files of other data (``npz:`` files) are described
by :mod:`rb_crossclass.data`, which fills a :class:`DatasetInfo` from the file's own metadata and
says where each number came from (``num_classes_source``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from pathlib import PurePath

from .errors import RBCrossclassError

KNOWN_DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "mnist", "imagenet")
# The datasets RobustBench keeps leaderboards for (``robustbench.model_zoo.enums.BenchmarkDataset``);
# MNIST has no board. Every other list of dataset names in the package derives from these two.
BOARD_DATASETS: tuple[str, ...] = tuple(d for d in KNOWN_DATASETS if d != "mnist")
# How people read a dataset's name (board titles).
DATASET_TITLES: dict[str, str] = dict(zip(KNOWN_DATASETS, ("CIFAR-10", "CIFAR-100", "MNIST", "ImageNet"),
                                          strict=True))

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
CIFAR100_CLASSES: tuple[str, ...] = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup",
    "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house",
    "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man",
    "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange", "orchid",
    "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy",
    "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal",
    "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar",
    "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
    "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)
MNIST_CLASSES: tuple[str, ...] = tuple(str(i) for i in range(10))

# Per-channel statistics of the normalization layer inside models we build (timm sources).
_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "mnist": ((0.1307,), (0.3081,)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


class DatasetFactsError(RBCrossclassError, ValueError):
    """Dataset facts that cannot hold (e.g. a class count that disagrees with the class names)."""


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is: ``num_classes`` K, ``class_names`` (K strings), input ``shape`` (C, H, W),
    normalization ``mean`` / ``std`` (C floats each), and where K came from
    (``num_classes_source``, e.g. ``"dataset name cifar10"`` or ``"npz field 'num_classes'"``;
    ``num_classes_inferred`` when it was only guessed from the labels present)."""

    name: str
    num_classes: int
    class_names: tuple[str, ...]
    shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes_source: str = ""
    num_classes_inferred: bool = False  # K guessed from the labels present (max + 1), not declared

    def __post_init__(self) -> None:
        if self.num_classes < 1:
            raise DatasetFactsError(f"{self.name}: a dataset needs at least one class, "
                                    f"got {self.num_classes}")
        if len(self.class_names) != self.num_classes:
            raise DatasetFactsError(f"{self.name}: {len(self.class_names)} class names for "
                                    f"{self.num_classes} classes")
        if len(self.mean) != self.shape[0] or len(self.std) != self.shape[0]:
            raise DatasetFactsError(f"{self.name}: normalization statistics do not match "
                                    f"{self.shape[0]} channels")

    def with_name(self, name: str) -> DatasetInfo:
        return replace(self, name=name)

    @property
    def card_name(self) -> str:
        """The dataset as a card names it: the dataset name, or an ``npz:`` file's stem when the
        file declares none."""
        if self.name.startswith("npz:"):
            return PurePath(self.name[4:]).stem
        return self.name


# How many test points RobustBench's official evaluations use (its leaderboards' N): the full
# CIFAR-10/100 test sets and its 5,000-image ImageNet subset; MNIST's full test set for completeness.
ROBUSTBENCH_N_EXAMPLES: dict[str, int] = {"cifar10": 10_000, "cifar100": 10_000, "imagenet": 5_000,
                                          "mnist": 10_000}


def robustbench_n_examples(dataset: str) -> int | None:
    """N of RobustBench's official evaluations on ``dataset`` (``None`` for other datasets)."""
    return ROBUSTBENCH_N_EXAMPLES.get(dataset)


def known_dataset(name: str) -> DatasetInfo | None:
    """Facts of a named dataset (:data:`KNOWN_DATASETS`), ``None`` for any other name."""
    if name not in KNOWN_DATASETS:
        return None
    return _known(name)


@cache
def _known(name: str) -> DatasetInfo:
    mean, std = _STATS[name]
    source = f"dataset name {name}"
    if name == "cifar10":
        return DatasetInfo(name, 10, CIFAR10_CLASSES, (3, 32, 32), mean, std, source)
    if name == "cifar100":
        return DatasetInfo(name, 100, CIFAR100_CLASSES, (3, 32, 32), mean, std, source)
    if name == "mnist":
        return DatasetInfo(name, 10, MNIST_CLASSES, (1, 28, 28), mean, std, source)
    return DatasetInfo(name, 1000, imagenet_class_names(), (3, 224, 224), mean, std, source)


def dataset_title(dataset: str) -> str:
    """A dataset's name as a title (``cifar10`` → ``CIFAR-10``); other names are returned as given."""
    return DATASET_TITLES.get(dataset, dataset)


def imagenet_class_names() -> tuple[str, ...]:
    """ImageNet-1k class names in index order (the first name of each synset's description, from
    timm's bundled tables)."""
    import warnings

    with warnings.catch_warnings():  # timm's import warns about torch.jit (see compat.import_timm)
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.interface` is deprecated",
                                category=FutureWarning)
        from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return tuple(info.index_to_description(i).split(",")[0].strip() for i in range(1000))


def normalization(dataset: str | None, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(mean, std)`` for the normalization layer of a model built for ``dataset`` with
    ``channels`` input channels: the dataset's statistics when known and of the right length,
    else 0.5 per channel."""
    stats = _STATS.get(dataset or "")
    if stats is not None and len(stats[0]) == channels:
        return stats
    return (0.5,) * channels, (0.5,) * channels


def generic_info(name: str, num_classes: int, shape: tuple[int, int, int], *,
                 class_names: tuple[str, ...] | None = None, num_classes_source: str = "",
                 num_classes_inferred: bool = False) -> DatasetInfo:
    """Facts of an unnamed dataset: class names ``"0".."K-1"`` unless given, 0.5 normalization."""
    mean, std = normalization(None, shape[0])
    names = class_names if class_names is not None else tuple(str(i) for i in range(num_classes))
    return DatasetInfo(name, num_classes, tuple(names), tuple(shape), mean, std, num_classes_source,
                       num_classes_inferred)
