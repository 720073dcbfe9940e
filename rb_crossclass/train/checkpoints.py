"""Training checkpoints as folders, swapped in atomically.

A checkpoint folder holds ``model.safetensors`` (weights), ``training_state.pt`` (optimizer,
scheduler and RNG states: tensors, numbers and lists only, loaded with ``weights_only=True``),
``recipe_state.pt`` (e.g. the EMA teacher) and ``meta.json`` (epoch, sha256 of the weights).
Everything is written to a temporary folder first, then renamed into place, so a crash never
leaves a half-written ``last`` behind (at worst the previous one survives as ``last.old``).

Per epoch, :func:`save_epoch` writes ``best`` and ``epoch_XXX`` first and ``last`` at the end:
``last`` is the commit point of an epoch, so a crash anywhere before it means the epoch is trained
again on resume and every file of that epoch is written again (a resumed run ends with the same
files as an uninterrupted one). Weights that are not finite are never saved.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from torch import nn

from ..core.errors import RBCrossclassError
from ..core.io import atomic_write_json, naming_write_errors, new_sibling_dir, replace_dir
from ..models import read_state_dict, save_safetensors
from ..models.checkpoint import load_torch_file

MODEL_FILE = "model.safetensors"
STATE_FILE = "training_state.pt"
RECIPE_FILE = "recipe_state.pt"
META_FILE = "meta.json"


class ResumeError(RBCrossclassError, RuntimeError):
    """A run cannot be resumed (no checkpoint, or it does not fit); the message names the file."""


class NonFiniteWeightsError(RBCrossclassError, FloatingPointError):
    """The model's weights became NaN/inf; the last good checkpoint is kept."""


def save_checkpoint(folder: str | os.PathLike, model: nn.Module, meta: dict,
                    training_state: dict | None = None, recipe_state: dict | None = None) -> str:
    """Write a checkpoint folder atomically; returns the sha256 of its ``model.safetensors``."""
    folder = Path(folder)
    tmp = new_sibling_dir(folder)
    try:
        sha = save_safetensors(model, tmp / MODEL_FILE, metadata={"epoch": str(meta.get("epoch"))})
        with naming_write_errors(folder / STATE_FILE):  # a full disk names the checkpoint
            if training_state is not None:
                torch.save(training_state, tmp / STATE_FILE)  # the folder swap below makes it atomic
            if recipe_state is not None:
                torch.save(recipe_state, tmp / RECIPE_FILE)
        atomic_write_json(tmp / META_FILE, {**meta, "model_sha256": sha})
        replace_dir(tmp, folder)  # a crash mid-swap leaves the previous checkpoint as ``.old``
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sha


def save_epoch(ckpt_dir: Path, epoch: int, model: nn.Module, meta: dict, training_state: dict,
               recipe_state: dict | None, *, is_best: bool, keep_epoch: bool,
               score: dict | None = None) -> str:
    """All checkpoints of one finished epoch (1-based), ``last`` written last; returns its sha256.

    Raises :class:`NonFiniteWeightsError` (nothing written) when a weight is NaN or infinite.
    """
    bad = [name for name, t in model.state_dict().items()
           if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise NonFiniteWeightsError(f"epoch {epoch}: weights {bad[:4]} hold NaN or infinite values; "
                                    "nothing was saved for this epoch")
    if is_best:
        save_checkpoint(ckpt_dir / "best", model, meta)
        if score is not None:
            atomic_write_json(ckpt_dir / "best" / "score.json", score)
    if keep_epoch:
        save_checkpoint(ckpt_dir / f"epoch_{epoch:03d}", model, meta)
    return save_checkpoint(ckpt_dir / "last", model, meta, training_state, recipe_state)


def find_checkpoint(folder: str | os.PathLike) -> Path | None:
    """``folder`` when complete, else the ``.old`` copy a crash mid-swap left behind."""
    folder = Path(folder)
    for cand in (folder, folder.with_name(folder.name + ".old")):
        if (cand / META_FILE).is_file() and (cand / MODEL_FILE).is_file():
            return cand
    return None


def read_meta(folder: str | os.PathLike) -> dict:
    """``meta.json`` of a checkpoint folder (as returned by :func:`find_checkpoint`)."""
    return json.loads((Path(folder) / META_FILE).read_text(encoding="utf-8"))


Loaded = tuple[dict, dict[str, torch.Tensor], "dict | None", "dict | None"]


def load_checkpoint(folder: str | os.PathLike) -> Loaded:
    """``(meta, model_state, training_state, recipe_state)`` of a checkpoint folder."""
    path = find_checkpoint(folder)
    if path is None:
        raise ResumeError(f"no complete checkpoint in {folder}")
    meta = read_meta(path)
    weights = read_state_dict(path / MODEL_FILE)
    states = []
    for name in (STATE_FILE, RECIPE_FILE):
        f = path / name
        states.append(load_torch_file(f) if f.is_file() else None)
    return meta, weights, states[0], states[1]


def rng_state() -> dict:
    """Global torch RNG states (CPU and, when present, every CUDA device)."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
