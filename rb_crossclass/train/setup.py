"""What a training run is built from: its data, model, recipe, optimizer and schedule.

Each builder reads the resolved :class:`~rb_crossclass.train.config.TrainConfig` only, so a run
resumed from a checkpoint rebuilds exactly the same objects and then loads their saved state.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from ..core.datasets import DatasetInfo
from ..core.runtime import Ranks
from ..data import open_split, train_loader
from ..models import FeatureClassifier, SourceOptions, create_model_source
from .config import ConfigError, TrainConfig, expand_data_spec


@dataclass
class TrainData:
    """Training tensors with their loader and sampler, the held-out tensors, the dataset facts."""

    info: DatasetInfo
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_eval: torch.Tensor
    y_eval: torch.Tensor
    sampler: DistributedSampler
    loader: DataLoader


def build_data(cfg: TrainConfig, ranks: Ranks) -> TrainData:
    """Read the training and held-out splits (first ``n_train`` / ``n_eval`` points) and build the
    loader. A ``DistributedSampler`` is used for one process too, so the global batch order is the
    same whatever the number of ranks (rank r takes every world-th index of one permutation)."""
    c = cfg.data
    train = open_split(expand_data_spec(c.train), c.train_split, c.n_train, c.data_dir,
                       dataset_name=c.dataset_name)
    held_out = open_split(expand_data_spec(c.eval), c.eval_split, c.n_eval, c.data_dir,
                          dataset_name=c.dataset_name)
    if held_out.info.num_classes != train.info.num_classes:
        raise ConfigError(f"data.eval has {held_out.info.num_classes} classes "
                          f"({held_out.info.num_classes_source}) but data.train has "
                          f"{train.info.num_classes} ({train.info.num_classes_source})")
    bs = cfg.optim.batch_size
    if bs % ranks.world_size:
        raise ConfigError(f"optim.batch_size={bs} must be divisible by the {ranks.world_size} ranks")
    sampler = DistributedSampler(range(len(train.y)), num_replicas=ranks.world_size, rank=ranks.rank,
                                 shuffle=True, seed=cfg.seed, drop_last=False)
    loader = train_loader(train.x, train.y, bs // ranks.world_size, seed=cfg.seed, augment=c.augment,
                          num_workers=c.num_workers, sampler=sampler)
    return TrainData(train.info, train.x, train.y, held_out.x, held_out.y, sampler, loader)


def model_options(cfg: TrainConfig, info: DatasetInfo) -> SourceOptions:
    """The model options of a run: sizes and normalization from the dataset facts."""
    return SourceOptions.for_data(info, threat_model=cfg.eval.threat_model, cifar_stem=cfg.model.cifar_stem,
                                  checkpoint=cfg.model.checkpoint, extra=dict(cfg.model.extra), seed=cfg.seed)


def build_model(cfg: TrainConfig, info: DatasetInfo) -> FeatureClassifier:
    """The model, its weights initialised from ``cfg.seed`` (or loaded from ``model.checkpoint``)."""
    torch.manual_seed(cfg.seed)
    return create_model_source(cfg.model.source, model_options(cfg, info))


def build_optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    o = cfg.optim
    return torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                           nesterov=o.nesterov)


def build_scheduler(cfg: TrainConfig, opt: torch.optim.Optimizer, start_epoch: int = 0):
    """The per-epoch learning-rate schedule of ``cfg``, advanced to ``start_epoch``.

    On resume the schedule is rebuilt from the (possibly changed) config rather than restored, so
    e.g. a longer ``optim.epochs`` continues along the new schedule instead of the saved one.
    """
    o = cfg.optim
    for group in opt.param_groups:  # a loaded optimizer state carries the old lr: start from the config's
        group["lr"] = o.lr
        group.pop("initial_lr", None)
    if o.schedule == "multistep":
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[int(m) for m in o.milestones],
                                                     gamma=o.gamma)
    elif o.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=o.epochs)
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _e: 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()": intended here
        for _ in range(start_epoch):
            sched.step()
    return sched
