"""Shared fixtures: real data from ../shared when present (skips with a reason otherwise),
tiny models, and the pyautoattack ResNet-18."""

from __future__ import annotations

import os
from pathlib import Path

# Before torch loads OpenMP, as the CLI does (rb_crossclass.cli.main): idle threads sleep instead of
# spinning, which on a busy shared machine made multi-threaded tests several times slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

from rb_crossclass.data import load_dataset, shared_data_dir

SHARED_DATA = shared_data_dir()
SHARED_ROOT = SHARED_DATA.parent if SHARED_DATA else None
CIFAR_TEST_NPZ = SHARED_DATA / "cifar10_partial" / "cifar10_test_first1017.npz" if SHARED_DATA else None
CIFAR_TRAIN_NPZ = SHARED_DATA / "cifar10_partial" / "cifar10_train_prefix.npz" if SHARED_DATA else None
OFFICIAL_CARDS = SHARED_ROOT / "robustbench" / "model_info" if SHARED_ROOT else None

needs_shared = pytest.mark.skipif(
    SHARED_DATA is None, reason="../shared/data (real CIFAR-10 part, MNIST test) is not present"
)


@pytest.fixture(autouse=True, scope="session")
def _threads():
    from rb_crossclass.core.runtime import set_cpu_threads

    set_cpu_threads()  # what every command uses: OMP_NUM_THREADS, SLURM_CPUS_PER_TASK or affinity


@pytest.fixture(scope="session")
def cifar_test() -> tuple[torch.Tensor, torch.Tensor]:
    """Real CIFAR-10 test images 0..1016: x [1017,3,32,32] in [0,1], y [1017]."""
    if CIFAR_TEST_NPZ is None:
        pytest.skip("../shared/data is not present")
    return load_dataset(f"npz:{CIFAR_TEST_NPZ}", "test")


@pytest.fixture(scope="session")
def cifar_train() -> tuple[torch.Tensor, torch.Tensor]:
    """Real CIFAR-10 training images (5085): x [5085,3,32,32] in [0,1], y [5085]."""
    if CIFAR_TRAIN_NPZ is None:
        pytest.skip("../shared/data is not present")
    return load_dataset(f"npz:{CIFAR_TRAIN_NPZ}", "train")


@pytest.fixture(scope="session")
def mnist_test() -> tuple[torch.Tensor, torch.Tensor]:
    """Real MNIST test set: x [10000,1,28,28] in [0,1], y [10000]."""
    if SHARED_DATA is None:
        pytest.skip("../shared/data is not present")
    return load_dataset("mnist", "test", data_dir=SHARED_DATA)


def pyautoattack_checkpoint() -> Path:
    import pyautoattack

    return Path(pyautoattack.__file__).parent / "examples" / "model_test.pt"


@pytest.fixture(scope="session")
def aa_resnet18():
    """pyautoattack's shipped standard CIFAR-10 ResNet-18 as a FeatureClassifier (eval mode)."""
    from rb_crossclass.models import create_model_source

    return create_model_source(
        "py:pyautoattack.examples.resnet:ResNet18", checkpoint=str(pyautoattack_checkpoint())
    )


class TinyConvNet(torch.nn.Module):
    """A small CNN with a linear head: [B,C,H,W] in [0,1] -> [B,K]."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3, width: int = 8) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(in_chans, width, 3, padding=1), torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(width, 2 * width, 3, padding=1), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
        )
        self.fc = torch.nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))


def tiny_convnet(num_classes: int = 10, in_chans: int = 3) -> TinyConvNet:
    torch.manual_seed(0)
    return TinyConvNet(num_classes, in_chans)


@pytest.fixture
def tiny_model():
    """A seeded TinyConvNet wrapped as a FeatureClassifier (hook extractor)."""
    from rb_crossclass.models import wrap_model

    return wrap_model(tiny_convnet()).eval()


def train_briefly(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int) -> torch.nn.Module:
    """``net`` trained ``epochs`` epochs with Adam (lr 1e-2, batches of 128, seeded order) on
    ``x, y``; returned in eval mode. A few seconds on the 5,085 real CIFAR-10 training images."""
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), 128):
            b = perm[i:i + 128]
            loss = torch.nn.functional.cross_entropy(net(x[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def direct_pyautoattack(model, x: torch.Tensor, y: torch.Tensor, cfg):
    """A plain pyautoattack run, as a user would write it, with ``cfg`` an ``AutoAttackConfig``:
    ``(x_adv, y_adv, per-point robust flags)``."""
    from pyautoattack import AutoAttack

    aa = AutoAttack(model, norm=cfg.norm, eps=cfg.eps, version=cfg.version,
                    attacks=list(cfg.attacks) if cfg.attacks else None, seed=cfg.seed)
    aa.verbose = False
    with torch.no_grad():
        x_adv, y_adv = aa.run_standard_evaluation(x, y, batch_size=cfg.batch_size)
        flags = model(x_adv).argmax(1).eq(y)
    return x_adv, y_adv, flags
