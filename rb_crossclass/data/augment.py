"""Training views of a dataset: the standard CIFAR augmentation (4-px reflect crop + flip)."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset


class AugmentedDataset(Dataset):
    """Training view of ``x [N,C,H,W]`` in [0,1] with random crop (reflect pad) + flip.

    Augmentation runs on tensors with a per-sample generator seeded from (seed, epoch, index),
    so an epoch is reproducible whatever the worker layout.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, pad: int = 4, flip: bool = True,
                 seed: int = 0) -> None:
        self.x, self.y, self.pad, self.flip, self.seed = x, y, pad, flip, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(
            ((self.seed * 1_000_003 + self.epoch) * 10_000_019 + int(i)) % (2**63)
        )
        img = self.x[i]
        if self.pad:
            h, w = img.shape[-2:]
            padded = torch.nn.functional.pad(img[None], [self.pad] * 4, mode="reflect")[0]
            top, left = torch.randint(0, 2 * self.pad + 1, (2,), generator=g).tolist()
            img = padded[:, top : top + h, left : left + w]
        if self.flip and torch.rand((), generator=g).item() < 0.5:
            img = img.flip(-1)
        return img, self.y[i]


def train_loader(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    seed: int = 0,
    augment: bool = True,
    shuffle: bool = True,
    sampler=None,
    num_workers: int = 0,
) -> DataLoader:
    """Loader over ``(x, y)`` with the standard CIFAR augmentation (crop 4 px reflect + flip).

    Augmentation applies only to 32x32 images (other sizes load as they are).
    """
    use_aug = augment and tuple(x.shape[-2:]) == (32, 32)
    ds: Dataset = AugmentedDataset(x, y, seed=seed) if use_aug else TensorDataset(x, y)
    g = torch.Generator().manual_seed(seed)
    return DataLoader(
        ds,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        generator=g,
        num_workers=num_workers,
        drop_last=False,
    )
