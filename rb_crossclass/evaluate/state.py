"""Resume state of an AutoAttack evaluation: one atomically written file per finished batch."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import torch
from torch import nn

from ..core.errors import without_unsafe_advice
from ..core.io import atomic_write, atomic_write_json
from ..core.runtime import Ranks
from .protocol import EvaluateError

log = logging.getLogger(__name__)
STATE_FORMAT = 1

def tensor_digest(*tensors: torch.Tensor) -> str:
    """sha256 over the raw bytes of CPU copies of ``tensors`` (shape and dtype included)."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def model_digest(model: nn.Module) -> str:
    """sha256 of a model's state dict (names, shapes, values)."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor_digest(t).encode())
    return h.hexdigest()


class EvalState:
    """A resume folder: ``meta.json`` (what is evaluated), ``clean.pt`` and one file per finished
    batch ``<attack>/batch_<b>.pt``; every file is written atomically.

    A batch file holds ``indices [B]`` (the points of the batch), ``fooled [B]`` bool and, for
    the fooled points, ``adv [F,C,H,W]`` and ``pred [F]``. Opening a folder made for other
    settings, model or data raises :class:`EvaluateError`.
    """

    def __init__(self, folder: str | os.PathLike, fingerprint: dict, ranks: Ranks | None = None) -> None:
        self.folder = Path(folder)
        self.fingerprint = fingerprint
        meta_path = self.folder / "meta.json"
        if meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text())
            except json.JSONDecodeError as err:
                raise EvaluateError(f"{meta_path}: not valid JSON ({err}); delete the state folder") from err
            old = meta.get("fingerprint")
            if old != fingerprint:
                old = old or {}
                diff = sorted(k for k in set(fingerprint) | set(old) if fingerprint.get(k) != old.get(k))
                raise EvaluateError(
                    f"state folder {self.folder} belongs to another evaluation (differs in {diff}): "
                    "use a new --state folder or delete it"
                )
        elif (ranks or Ranks()).main:
            atomic_write_json(meta_path, {"format": STATE_FORMAT, "fingerprint": fingerprint})
        self.loaded = 0
        self.written = 0

    def _load(self, path: Path) -> dict | None:
        if not path.is_file():
            return None
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - a file we cannot read is redone, not trusted
            log.warning("state file %s unreadable (%s): redoing it", path,
                        without_unsafe_advice(str(err))[:300])
            return None

    def _save(self, path: Path, record: dict) -> None:
        atomic_write(path, lambda tmp: torch.save(record, tmp))
        self.written += 1

    def load_clean(self, n: int) -> dict | None:
        rec = self._load(self.folder / "clean.pt")
        if rec is not None and rec["pred"].shape != (n,):
            raise EvaluateError(f"{self.folder}/clean.pt holds {rec['pred'].shape[0]} points, not {n}")
        return rec

    def save_clean(self, record: dict) -> None:
        self._save(self.folder / "clean.pt", record)

    def batch_path(self, attack: str, batch: int) -> Path:
        return self.folder / attack / f"batch_{batch:06d}.pt"

    def load_batch(self, attack: str, batch: int, indices: torch.Tensor) -> dict | None:
        rec = self._load(self.batch_path(attack, batch))
        if rec is None:
            return None
        if not torch.equal(rec["indices"], indices):
            raise EvaluateError(
                f"{self.batch_path(attack, batch)} holds other points than this run's batch: the state "
                "folder is inconsistent; delete it and start again"
            )
        self.loaded += 1
        return rec

    def save_batch(self, attack: str, batch: int, record: dict) -> None:
        self._save(self.batch_path(attack, batch), record)


