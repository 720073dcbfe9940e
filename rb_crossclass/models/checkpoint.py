"""Loading and saving weights safely: safetensors, or torch files with ``weights_only=True``.

Arbitrary pickles are never unpickled. Whatever the file format, the state dict goes through one
normaliser (:func:`normalize_state_dict`): nesting under ``state_dict`` / ``model_state_dict`` /
``model`` / ``net`` is unwrapped, and the prefixes that wrappers add (``module.`` of
DataParallel/DDP, ``_orig_mod.`` of ``torch.compile``, in any combination and order) are
stripped. Loading (:func:`load_into`) is strict: every key must match, and a tensor whose dtype
cannot hold the parameter (integer, bool or complex weights for a float parameter) is refused
instead of being silently cast.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from ..core.errors import RBCrossclassError, without_unsafe_advice
from ..core.io import atomic_write


class CheckpointError(RBCrossclassError, RuntimeError):
    """A checkpoint file cannot be read or does not fit the model; the message names the file."""


NESTED_KEYS = ("state_dict", "model_state_dict", "model", "net")
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Normalised tensors of a safetensors or torch checkpoint file (never unpickles objects)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if _looks_like_html(path):
        raise CheckpointError(
            f"{path} is an HTML page, not a checkpoint (a failed download saved as a file): "
            f"delete {path} and download it again"
        )
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file (an interrupted download?); delete it and download again")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            obj: object = load_file(str(path), device="cpu")
        except Exception as err:  # noqa: BLE001 - safetensors raises its own error types
            raise CheckpointError(f"{path}: not a readable safetensors file ({str(err)[:200]})") from err
    else:
        obj = load_torch_file(path)
    return normalize_state_dict(obj, str(path))


def load_torch_file(path: str | os.PathLike) -> object:
    """``torch.load(path, weights_only=True)`` on the CPU; any error (a damaged file raises whatever
    its bytes make the reader trip on: IndexError, struct.error, UnpicklingError, ...) becomes a
    :class:`CheckpointError` naming the file, with torch's advice to unpickle removed."""
    path = Path(path)
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - the kind: every way a damaged file can fail
        what = torch_error_text(err)
        if isinstance(err, pickle.UnpicklingError):
            raise CheckpointError(
                f"{path}: cannot be loaded with weights_only=True (it pickles objects other than "
                f"tensors, or is corrupt/truncated; delete it and download again): {what}"
            ) from err
        raise CheckpointError(
            f"{path}: not a readable torch checkpoint (corrupt or truncated download? delete it "
            f"and download again): {type(err).__name__}: {what}"
        ) from err


def torch_error_text(err: BaseException, limit: int = 300) -> str:
    """The message of a torch error as we show it: without advice to unpickle, at most ``limit``
    characters."""
    return without_unsafe_advice(str(err))[:limit]


HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml", b"<meta", b"<title", b"<script")


def _looks_like_html(path: Path) -> bool:
    """Whether the file starts like a web page: after a byte-order mark, whitespace and any
    ``<!-- ... -->`` comments, an HTML/XML tag. UTF-16 pages are read as UTF-16."""
    with path.open("rb") as f:
        head = f.read(4096)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        head = head.decode("utf-16", errors="ignore").encode("utf-8", errors="ignore")
    head = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    while head.startswith(b"<!--"):
        end = head.find(b"-->")
        if end < 0:
            return True  # a comment running past the first 4 KB: no checkpoint starts with '<!--'
        head = head[end + 3:].lstrip()
    return head.startswith(HTML_STARTS)


def normalize_state_dict(obj: object, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The plain ``{name: tensor}`` inside ``obj`` with wrapper prefixes stripped.

    Unwraps the nesting keys of :data:`NESTED_KEYS` (repeatedly; a nested value that is a
    one-element list is its element), strips every leading
    :data:`WRAPPER_PREFIXES` from each key, and refuses non-string keys, non-tensor values and
    two keys that become one.
    """
    while isinstance(obj, Mapping) and not _is_state_dict(obj):
        nested = [k for k in NESTED_KEYS if isinstance(_single(obj.get(k)), Mapping)]
        if not nested:
            keys = sorted(map(repr, obj))[:8]
            raise CheckpointError(f"{source}: holds a dict with keys {keys}, not a state dict")
        obj = _single(obj[nested[0]])
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{source}: holds a {type(obj).__name__}, not a state dict of tensors")
    out: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{source}: key {key!r} ({type(key).__name__}) is not a parameter name")
        name = strip_wrapper_prefixes(key)
        if name in out:
            raise CheckpointError(f"{source}: keys {key!r} and another both become {name!r} once "
                                  "wrapper prefixes are removed")
        out[name] = value
    return out


def _single(value: object) -> object:
    """A one-element list or tuple stands for its element (the OVAL networks save ``state_dict`` as
    ``[state dict]``); anything else is returned as it is."""
    if isinstance(value, (list, tuple)) and len(value) == 1:
        return value[0]
    return value


def strip_wrapper_prefixes(key: str) -> str:
    """``module._orig_mod.conv.weight`` → ``conv.weight`` (any number and order of prefixes)."""
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key


def _is_state_dict(d: Mapping) -> bool:
    return bool(d) and all(isinstance(v, torch.Tensor) for v in d.values())


def load_into(model: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Load ``state`` into a FeatureClassifier (full keys ``net.*``) or into its wrapped ``net``.

    Strict: every key must match (the error lists missing and unexpected keys) and a float
    parameter only takes floating-point values (integer/bool/complex tensors are refused).
    """
    state = {strip_wrapper_prefixes(k): v for k, v in state.items()}
    full = any(k.startswith("net.") for k in state) and set(state) <= set(model.state_dict())
    target = model if full else getattr(model, "net", model)
    expected = target.state_dict()
    _check_dtypes(state, expected, source)
    try:
        result = target.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise CheckpointError(f"{source} does not fit the model: {str(err)[:500]}") from err
    missing = [k for k in result.missing_keys if not k.startswith("normalize.")]
    if missing or result.unexpected_keys:
        raise CheckpointError(
            f"{source} does not fit the model: missing {missing[:6]}"
            f"{'...' if len(missing) > 6 else ''}, unexpected {result.unexpected_keys[:6]}"
            f"{'...' if len(result.unexpected_keys) > 6 else ''}"
        )


def _check_dtypes(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], source: str) -> None:
    for name, tensor in state.items():
        want = expected.get(name)
        if want is None or not isinstance(tensor, torch.Tensor):
            continue
        if tensor.is_complex() or (want.is_floating_point() and not tensor.is_floating_point()):
            raise CheckpointError(
                f"{source}: tensor {name!r} has dtype {tensor.dtype} but the model's is {want.dtype}; "
                "refusing to cast weights silently (was the file written from another model?)"
            )


def save_safetensors(model: nn.Module, path: str | os.PathLike, metadata: dict | None = None) -> str:
    """Save ``model.state_dict()`` as safetensors atomically; returns the file's sha256."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))
    return sha256_file(path)


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _DownloadFailed(Exception):
    """Carries a download's own error through :func:`atomic_write` (args[0])."""


class ChecksumMismatchError(CheckpointError, ValueError):
    """A checkpoint whose sha256 differs from the recorded one; the message names the file and both
    digests."""


def check_sha256(path: str | os.PathLike, expected: str, *, recorded_by: str = "recorded") -> str:
    """``path``'s hex sha256 when it equals ``expected`` (64 hex digits, any case).

    ``recorded_by`` names where ``expected`` comes from in the message (``"the manifest's"``).
    Raises :class:`ChecksumMismatchError` naming the file and both digests, :class:`CheckpointError`
    when the file does not exist.
    """
    if not Path(path).is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    digest = sha256_file(path)
    if digest != expected.lower():
        raise ChecksumMismatchError(f"checkpoint {path}: sha256 {digest} differs from {recorded_by} "
                                    f"{expected.lower()} (a different or corrupted file)")
    return digest


def download_checkpoint(url: str, target: str | os.PathLike, *, sha256: str | None = None,
                        recorded_by: str = "recorded", place_hint: str = "",
                        progress: bool = False) -> Path:
    """The checkpoint at ``url`` as the local file ``target``, its sha256 checked when given.

    A ``target`` already present (and matching ``sha256`` when given) is used as it is; otherwise the
    file is downloaded (``http(s)://`` or ``file://``) and written atomically, so an interrupted
    download leaves no partial file. ``place_hint`` (e.g. ``" or place the file at X"``) is added
    to the offline advice. Raises :class:`CheckpointError` when the download fails (offline,
    unknown host, HTTP error: one line saying where to put the file) and
    :class:`ChecksumMismatchError` when the downloaded file's digest differs from ``sha256``.
    """
    import torch.hub

    target = Path(target)
    if target.is_file() and (not sha256 or sha256_file(target) == sha256.lower()):
        return target

    def fetch(tmp: str) -> None:
        try:
            torch.hub.download_url_to_file(url, tmp, progress=progress)
        except Exception as err:  # noqa: BLE001 - urllib / http errors of many kinds
            # raised past atomic_write's disk-error translation (a URLError is an OSError)
            raise _DownloadFailed(err) from err

    try:
        atomic_write(target, fetch)
    except _DownloadFailed as failed:
        err = failed.args[0]
        reason = f"{type(err).__name__}: {' '.join(str(err).split())}"[:120]
        raise CheckpointError(f"checkpoint {url} could not be downloaded to {target} ({reason}); "
                              f"offline? download it elsewhere and put it at {target}{place_hint}") from err
    if sha256:
        check_sha256(target, sha256, recorded_by=recorded_by)
    return target
