"""The files of a run folder (written by rank 0), and the run's result record.

    config.yaml            the resolved configuration
    metrics.jsonl          one row per epoch: losses (total and named parts), lr, images/s and, on
                           evaluated epochs, held-out clean / PGD-20 accuracy and CAS
    train_log.jsonl        step losses every ``runtime.log_every`` steps
    scores/epoch_XXX.json  full cross-class scores (matrices) of each evaluation
    curves.png             accuracy and CAS per epoch, best epoch marked
    checkpoints/           see :mod:`rb_crossclass.train.checkpoints`
    summary.json, card.json

Every file is written atomically; after a resume, rows of epochs that will be trained again are
dropped, so a resumed run ends with the same files as an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..core.errors import RBCrossclassError
from ..core.io import atomic_write_json, atomic_write_text
from . import checkpoints as ckpt
from .config import TrainConfig, config_to_yaml, load_config

log = logging.getLogger(__name__)

# Config keys that may change when a run is resumed (everything else must match the saved run).
RESUMABLE_CHANGES = ("runtime.", "optim.epochs", "checkpoint.every", "eval.every", "eval.intervals")


@dataclass
class TrainResult:
    """What a run produced. Accuracies are fractions in [0,1] on the held-out set."""

    out_dir: str
    epochs: int
    best_epoch: int | None
    best_robust_acc: float | None
    best_clean_acc: float | None
    best_cas: float | None
    final: dict
    checkpoint_sha256: str | None  # of checkpoints/best/model.safetensors (last when never evaluated)
    seconds: float
    train_images_per_second: float
    world_size: int = 1
    seed: int = 0
    history: list[dict] = field(default_factory=list)
    parameters: int | None = None  # of the network actually trained (what model.source built)

    def to_dict(self) -> dict:
        return asdict(self)


def config_diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dicts (``extra``/``params`` compared whole)."""
    out = []
    for k in sorted(set(a) | set(b)):
        key = prefix + k
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict) and k not in ("extra", "params"):
            out += config_diff(va, vb, key + ".")
        elif va != vb:
            out.append(key)
    return out


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a crash while appending: drop it
                log.warning("%s: dropping an unreadable line", path)
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


class RunFolder:
    """The run folder of one training run: checks before training, one call per output."""

    def __init__(self, out: Path, cfg: TrainConfig) -> None:
        self.out, self.cfg = out, cfg
        self.ckpt_dir = out / "checkpoints"

    def has_checkpoint(self) -> bool:
        return ckpt.find_checkpoint(self.ckpt_dir / "last") is not None

    def check(self, resume: bool) -> None:
        """Refuse to overwrite a run without ``resume``, or to resume it with a changed config."""
        if self.out.exists() and not self.out.is_dir():
            raise RBCrossclassError(f"--out {self.out} exists and is not a folder")
        cfg_path = self.out / "config.yaml"
        if self.has_checkpoint() and not resume:
            raise RBCrossclassError(f"{self.out} already holds a run: pass --resume to continue it or "
                                    "choose another --out folder")
        if resume and self.has_checkpoint() and cfg_path.is_file():
            saved = load_config(cfg_path)
            diff = [k for k in config_diff(saved.to_dict(), self.cfg.to_dict())
                    if not k.startswith(RESUMABLE_CHANGES)]
            if diff:
                raise RBCrossclassError(f"--resume: the config differs from the saved run {cfg_path} "
                                        f"in {diff}; resume with the same config or use a new --out")

    def start(self, start_epoch: int) -> list[dict]:
        """Write ``config.yaml`` and keep the rows of epochs up to ``start_epoch``; returns them."""
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.out / "config.yaml", config_to_yaml(self.cfg))
        history = [r for r in read_jsonl(self.out / "metrics.jsonl") if r.get("epoch", 0) <= start_epoch]
        write_jsonl(self.out / "metrics.jsonl", history)
        log_rows = [r for r in read_jsonl(self.out / "train_log.jsonl") if r.get("epoch", 0) <= start_epoch]
        write_jsonl(self.out / "train_log.jsonl", log_rows)
        return history

    def record_epoch(self, history: list[dict], step_rows: list[dict], score, best_epoch: int | None) -> None:
        """Append one epoch: metrics, step log, scores file and curves."""
        epoch = history[-1]["epoch"]
        write_jsonl(self.out / "metrics.jsonl", history)
        with open(self.out / "train_log.jsonl", "a", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in step_rows)
        if score is not None:
            atomic_write_json(self.out / "scores" / f"epoch_{epoch:03d}.json", score.to_dict())
        self.plot(history, best_epoch)

    def plot(self, history: list[dict], best_epoch: int | None) -> None:
        from ..figures import plot_curves

        try:
            plot_curves(history, self.out / "curves.png", best_epoch,
                        title=f"{self.cfg.name}: {self.cfg.recipe.name}, {self.cfg.model.source}")
        except Exception as err:  # noqa: BLE001 - a plotting failure must not stop training
            log.warning("could not plot curves: %s", err)

    def finish(self, result: TrainResult, card: dict | None) -> None:
        atomic_write_json(self.out / "summary.json", result.to_dict())
        if card is not None:
            from ..cards import write_card

            write_card(card, self.out / "card.json")


def training_card(cfg: TrainConfig, result: TrainResult, ckpt_dir: Path, info, attack,
                  n_eval: int) -> dict | None:
    """A card for the best checkpoint (``card.json``): the held-out clean accuracy and the
    cross-class block of its PGD evaluation (whose robust accuracy stays in ``cross_class``). It has
    no ``autoattack_acc`` — a PGD number is never stored there — so boards keep it off the
    AutoAttack ranking until ``rb-crossclass evaluate`` has run."""
    if result.best_epoch is None or result.checkpoint_sha256 is None:
        return None
    from ..cards import CardDescription, card_from_results, protocol_block
    from ..core.threat import format_eps

    best_score = ckpt_dir / "best" / "score.json"
    if not best_score.is_file():
        return None
    score = json.loads(best_score.read_text())
    score["attack"] = {"name": "pgd", **attack.as_dict()}
    training = {"recipe": cfg.recipe.name, "config": cfg.to_dict(), "epochs": cfg.optim.epochs,
                "best_epoch": result.best_epoch, "checkpoint_sha256": result.checkpoint_sha256}
    if result.parameters is not None:
        training["parameters"] = result.parameters
    return card_from_results(
        name=cfg.name, dataset=info.card_name, threat_model=cfg.eval.threat_model, eps=format_eps(attack.eps),
        clean_accuracy=result.best_clean_acc, robust_accuracy=None, description=CardDescription(
            architecture=cfg.model.source,
            footnote=(f"Trained with rb-crossclass ({cfg.recipe.name}); not evaluated with AutoAttack yet. "
                      f"Held-out PGD-{attack.steps} accuracy on the first {n_eval} points at the best epoch "
                      f"({result.best_epoch}): {100 * result.best_robust_acc:.2f}% "
                      "(cross_class.robust_accuracy).")),
        cross_class=protocol_block(score), training=training)
