"""The training loop: a recipe, SGD, held-out evaluation with CAS every epoch, checkpoints, resume,
DDP.

``train(config, out_dir, resume=False) -> TrainResult``; the run folder is described in
:mod:`rb_crossclass.train.outputs`. Under ``torchrun`` (``WORLD_SIZE > 1``) the model is wrapped in
DDP (gloo on CPU, nccl on GPU), each rank reads its share of every batch, the held-out evaluation
is sharded over the ranks (:func:`rb_crossclass.crossclass.score_model`, accumulators summed by an
all-reduce) and rank 0 alone writes. Every epoch reseeds the global RNG from ``(seed, epoch,
rank)``, so a run resumed from an epoch checkpoint repeats exactly what an uninterrupted run does.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path

import torch
from torch import nn

from ..attacks import PGDConfig
from ..core.errors import RBCrossclassError
from ..core.runtime import Ranks, cpu_threads, distributed, require_bf16
from ..core.threat import parse_eps
from ..crossclass import ComputeSettings, ScoreResult, score_model
from ..recipes import create_recipe
from . import checkpoints as ckpt
from .config import TrainConfig
from .outputs import RunFolder, TrainResult, training_card
from .setup import build_data, build_model, build_optimizer, build_scheduler, model_options

log = logging.getLogger(__name__)


class TrainingDivergedError(RBCrossclassError, FloatingPointError):
    """The loss or the weights became NaN/inf; the run stopped and the last good checkpoint was kept."""


def train(config: TrainConfig, out_dir: str | os.PathLike, resume: bool = False) -> TrainResult:
    """Train with ``config``, writing into ``out_dir``; ``resume`` continues from its last
    checkpoint (a fresh start when there is none)."""
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(config.runtime.num_threads or cpu_threads())
        with distributed(config.runtime.device) as (ranks, device):
            return Trainer(config, Path(out_dir), resume, ranks, device).run()
    finally:
        torch.set_num_threads(threads)


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + rank * 104_729 + 17) % (2**63)


def held_out_attack(cfg: TrainConfig) -> PGDConfig:
    """The held-out evaluation's attack (the paper's PGD-20 protocol by default)."""
    e = cfg.eval
    return PGDConfig(eps=parse_eps(e.eps), steps=e.steps, norm=e.threat_model,
                     step_size=parse_eps(e.step_size) if e.step_size is not None else None)


class Trainer:
    """One run: set-up in :meth:`run`, one :meth:`train_epoch` and :meth:`evaluate` per epoch."""

    def __init__(self, cfg: TrainConfig, out: Path, resume: bool, ranks: Ranks, device: torch.device) -> None:
        self.cfg, self.resume, self.ranks, self.device = cfg, resume, ranks, device
        self.folder = RunFolder(out, cfg)
        if cfg.runtime.bf16:
            require_bf16(device, "runtime.bf16")  # refused where the hardware lacks native bf16
        self.autocast = cfg.runtime.bf16
        self.channels_last = cfg.runtime.channels_last  # also pays off on CPU (oneDNN convolutions)
        self.attack = held_out_attack(cfg)
        self.best_epoch: int | None = None
        self.best_robust = -1.0
        self.history: list[dict] = []

    # ---------------------------------------------------------------- set-up
    def _setup(self) -> None:
        cfg = self.cfg
        self.folder.check(self.resume)
        self.ranks.barrier()
        self.data = build_data(cfg, self.ranks)
        self.model = build_model(cfg, self.data.info).to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.recipe = create_recipe(cfg.recipe.name, **cfg.recipe.params)
        self.recipe.prepare(model_options(cfg, self.data.info))
        self.opt = build_optimizer(cfg, self.model)
        start = self._restore() if self.resume and self.folder.has_checkpoint() else 0
        if self.resume and not start:
            log.info("no checkpoint to resume from in %s: starting from scratch", self.folder.ckpt_dir)
        self.start_epoch = start
        self.sched = build_scheduler(cfg, self.opt, start)
        if self.ranks.main:
            self.history = self.folder.start(start)
        self.train_model: nn.Module = self.model
        if self.ranks.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model = DDP(self.model, device_ids=ids)
        if cfg.runtime.compile:
            self.train_model = torch.compile(self.train_model)

    def _restore(self) -> int:
        meta, weights, state, recipe_state = ckpt.load_checkpoint(self.folder.ckpt_dir / "last")
        if state is None:
            raise ckpt.ResumeError(f"{self.folder.ckpt_dir / 'last'} has no {ckpt.STATE_FILE}")
        self.model.load_state_dict(weights)
        self.opt.load_state_dict(state["optimizer"])
        ckpt.set_rng_state(state["rng"])
        if recipe_state is not None:
            self.recipe.load_state_dict(recipe_state)
        self.best_epoch = meta.get("best_epoch")
        self.best_robust = float(meta.get("best_robust_acc", -1.0))
        log.info("resumed from %s at epoch %d", self.folder.ckpt_dir / "last", int(meta["epoch"]))
        return int(meta["epoch"])

    # ---------------------------------------------------------------- one epoch
    def train_epoch(self, epoch: int) -> tuple[dict, list[dict]]:
        """Train one epoch (0-based); returns the metrics row and the step-log rows."""
        from ..core.progress import progress_bar

        cfg, ranks = self.cfg, self.ranks
        seed = epoch_seed(cfg.seed, epoch, ranks.rank)
        torch.manual_seed(seed)
        if self.device.type == "cuda":
            torch.cuda.manual_seed_all(seed)
        self.data.sampler.set_epoch(epoch)
        if hasattr(self.data.loader.dataset, "set_epoch"):
            self.data.loader.dataset.set_epoch(epoch)
        self.recipe.set_epoch(epoch)
        self.model.train()
        sums: dict[str, float] = {}
        n_seen, steps, step_rows, t0 = 0, len(self.data.loader), [], time.perf_counter()
        lr = self.opt.param_groups[0]["lr"]
        with progress_bar(total=steps, desc=f"epoch {epoch + 1}/{cfg.optim.epochs}", unit="batch",
                          leave=False, disable=not (ranks.main and cfg.runtime.progress)) as bar:
            for step, (x, y) in enumerate(self.data.loader):
                values = self._step(epoch, step, x, y)
                n_seen += len(y)
                for k, v in values.items():
                    sums[k] = sums.get(k, 0.0) + v * len(y)
                if step == 0 or (cfg.runtime.log_every and step % cfg.runtime.log_every == 0):
                    step_rows.append({"epoch": epoch + 1, "step": step, **values, "lr": lr})
                rate = n_seen * ranks.world_size / max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix(loss=f"{values['loss']:.3f}", img_s=f"{rate:.0f}")
                bar.update(1)
        seconds = time.perf_counter() - t0
        self.sched.step()
        means = {k: v / max(n_seen, 1) for k, v in sums.items()}
        row = {"epoch": epoch + 1, "train_loss": means.pop("loss", math.nan),
               "loss_parts": means, "lr": lr, "train_seconds": seconds,
               "train_images_per_second": n_seen * ranks.world_size / seconds, **self.recipe.epoch_info()}
        return row, step_rows

    def _step(self, epoch: int, step: int, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """One optimizer step; returns the rank-averaged loss and loss parts."""
        x = x.to(self.device, non_blocking=True)
        y = y.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.autocast):
            record = self.recipe.loss(self.train_model, x, y)
        names = ["loss", *record.parts]
        stacked = torch.stack([record.total.detach().float(),
                               *(p.detach().float() for p in record.parts.values())])
        values = dict(zip(names, self.ranks.mean(stacked).tolist(), strict=True))
        if not math.isfinite(values["loss"]):
            raise TrainingDivergedError(self._diverged_message(f"training loss became {values['loss']}",
                                                               epoch, step))
        self.opt.zero_grad(set_to_none=True)
        record.total.backward()
        if self.cfg.optim.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.opt.step()
        self.recipe.after_step(self.model)
        return values

    def _diverged_message(self, what: str, epoch: int, step: int | None = None) -> str:
        last = ckpt.find_checkpoint(self.folder.ckpt_dir / "last")
        kept = (f"the last good checkpoint is kept at {last} (epoch {ckpt.read_meta(last)['epoch']})" if last
                else "no checkpoint had been written yet")
        where = f"epoch {epoch + 1}" + (f", step {step}" if step is not None else "")
        return f"{what} at {where}: stopped; {kept}. Lower optim.lr or check the data/model"

    def evaluate(self) -> tuple[dict, ScoreResult]:
        """Held-out clean accuracy, PGD accuracy and cross-class scores (sharded over the ranks).

        The attack draws its random start from its own generator seeded with ``cfg.seed``, so
        evaluation never touches the global RNG and every epoch sees the same starts; so does the
        bootstrap of CAS (``eval.intervals``), which therefore changes no trained weight.
        """
        t0 = time.perf_counter()
        score = score_model(self.model, self.data.x_eval, self.data.y_eval, attack=self.attack,
                            compute=ComputeSettings(device=self.device, batch_size=self.cfg.eval.batch_size,
                                                    bf16=self.autocast, channels_last=self.channels_last),
                            seed=self.cfg.seed,
                            class_names=list(self.data.info.class_names),
                            progress=self.ranks.main and self.cfg.runtime.progress, ranks=self.ranks,
                            desc=f"held-out PGD-{self.attack.steps} + CAS",
                            intervals=self.cfg.eval.cas and self.cfg.eval.intervals)
        row = {"clean_acc": score.clean_accuracy, "robust_acc": score.robust_accuracy,
               "n_eval": len(self.data.y_eval), "attack": f"PGD-{self.attack.steps}"}
        if self.cfg.eval.cas:
            row.update(cas=score.cas, clean_cas=score.clean_cas, normalized_cas=score.normalized_cas,
                       fsi=score.fsi, clean_fsi=score.clean_fsi)
        row["eval_seconds"] = time.perf_counter() - t0
        return row, score

    # ---------------------------------------------------------------- the run
    def run(self) -> TrainResult:
        t_start = time.perf_counter()
        self._setup()
        cfg, epochs = self.cfg, self.cfg.optim.epochs
        rates = []
        for epoch in range(self.start_epoch, epochs):
            row, step_rows = self.train_epoch(epoch)
            rates.append(row["train_images_per_second"])
            score = None
            if (epoch + 1) % cfg.eval.every == 0 or epoch + 1 == epochs:
                evaluated, score = self.evaluate()
                row.update(evaluated)
                if evaluated["robust_acc"] > self.best_robust:
                    self.best_robust, self.best_epoch = evaluated["robust_acc"], epoch + 1
            if self.ranks.main:  # the epoch's files first, its `last` checkpoint (the commit point) last
                self.history.append(row)
                self.folder.record_epoch(self.history, step_rows, score if cfg.eval.cas else None,
                                         self.best_epoch)
                self._save(epoch, row, score)
                log.info("epoch %d/%d: %s", epoch + 1, epochs, format_row(row))
            self.ranks.barrier()
        result = self._result(time.perf_counter() - t_start, rates)
        if self.ranks.main:
            self.folder.finish(result, training_card(cfg, result, self.folder.ckpt_dir, self.data.info,
                                                     self.attack, len(self.data.y_eval)))
        return result

    def _save(self, epoch: int, row: dict, score: ScoreResult | None) -> None:
        meta = {"epoch": epoch + 1, "best_epoch": self.best_epoch, "best_robust_acc": self.best_robust,
                "recipe": self.cfg.recipe.name, "seed": self.cfg.seed, "metrics": row}
        state = {"optimizer": self.opt.state_dict(), "rng": ckpt.rng_state(), "epoch": epoch + 1}
        try:
            every = self.cfg.checkpoint.every
            ckpt.save_epoch(self.folder.ckpt_dir, epoch + 1, self.model, meta, state,
                            self.recipe.state_dict(), is_best=self.best_epoch == epoch + 1,
                            keep_epoch=bool(every) and (epoch + 1) % every == 0,
                            score=score.to_dict() if score is not None else None)
        except ckpt.NonFiniteWeightsError as err:
            raise TrainingDivergedError(self._diverged_message(str(err), epoch)) from err

    def _result(self, seconds: float, rates: list[float]) -> TrainResult:
        best = next((r for r in self.history if r["epoch"] == self.best_epoch), None)
        folder = ckpt.find_checkpoint(self.folder.ckpt_dir / ("best" if best else "last"))
        sha = ckpt.read_meta(folder)["model_sha256"] if folder is not None and self.ranks.main else None
        return TrainResult(
            out_dir=str(self.folder.out), epochs=self.cfg.optim.epochs, best_epoch=self.best_epoch,
            best_robust_acc=best["robust_acc"] if best else None,
            best_clean_acc=best["clean_acc"] if best else None,
            best_cas=best.get("cas") if best else None,
            final=self.history[-1] if self.history else {}, checkpoint_sha256=sha, seconds=seconds,
            train_images_per_second=sum(rates) / len(rates) if rates else 0.0,
            world_size=self.ranks.world_size, seed=self.cfg.seed, history=list(self.history),
            parameters=sum(p.numel() for p in self.model.parameters()))


def format_row(row: dict) -> str:
    """One line for the log: loss, speed, held-out accuracies and CAS."""
    parts = [f"loss {row['train_loss']:.4f}", f"{row['train_images_per_second']:.0f} img/s"]
    if "clean_acc" in row:
        parts += [f"clean {100 * row['clean_acc']:.1f}%", f"{row['attack']} {100 * row['robust_acc']:.1f}%"]
    if row.get("cas") is not None:
        parts.append(f"CAS {row['cas']:.2f}")
    return ", ".join(parts)
