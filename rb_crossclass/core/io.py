"""Files we write: atomic writes and folder swaps (a crash never leaves a half-written result
behind), and :func:`jsonable` (the JSON form of results: NaN/inf as ``null``)."""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import RBCrossclassError


class FileWriteError(RBCrossclassError, OSError):
    """A file could not be written (disk full, no permission, ...); the message names the file and
    ``errno`` keeps the cause."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(message)
        self.errno = code


@contextlib.contextmanager
def naming_write_errors(path: str | os.PathLike) -> Iterator[None]:
    """Inside the block, an ``OSError`` that names no file or only our hidden temp file (``ENOSPC``
    from ``write``/``fsync`` names none), or torch's "file write failed", becomes
    :class:`FileWriteError` naming ``path``."""
    try:
        yield
    except FileWriteError:
        raise
    except OSError as err:
        if err.filename is not None and not Path(os.fsdecode(err.filename)).name.endswith(".tmp"):
            raise
        disk_full = err.errno in (errno.ENOSPC, errno.EDQUOT)
        raise FileWriteError(err.errno, f"cannot write {path}: {err.strerror or err}"
                             + (" (the disk is full or over quota)" if disk_full else "")) from err
    except RuntimeError as err:  # torch.save reports a failed write as a RuntimeError
        if "write" not in str(err).lower():
            raise
        raise FileWriteError(errno.EIO, f"cannot write {path}: {str(err)[:200]} (is the disk full?)") from err


@contextlib.contextmanager
def no_empty_folders_left(path: str | os.PathLike) -> Iterator[None]:
    """Run the body (e.g. a download into ``path``); when it raises, remove the folders of ``path``
    and its parents that did not exist before and are still empty, deepest first, then re-raise.
    A failed offline download thus leaves the file system as it found it (never a folder that
    held anything, never one that existed before)."""
    target = Path(path).absolute()
    new = [p for p in (target, *target.parents) if not p.exists()]
    try:
        yield
    except BaseException:
        for folder in new:  # deepest first
            with contextlib.suppress(OSError):  # not empty, or gone: leave it
                folder.rmdir()
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` on a temp file beside ``path``, then rename it onto ``path``. A write
    that fails without naming a file (a full disk) raises :class:`FileWriteError` naming ``path``."""
    path = Path(path)
    with naming_write_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            write(tmp)
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; results are meant to be shared
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""

    def _write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    atomic_write(path, _write)


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    """JSON-dump ``obj`` to ``path`` atomically (trailing newline)."""
    atomic_write_text(path, json.dumps(obj, indent=indent) + "\n")


def jsonable(value: Any) -> Any:
    """``value`` with NaN/±inf floats replaced by ``None`` and tensors / numpy values turned into
    lists and numbers, recursively through dicts, lists and tuples (JSON cannot hold NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # tensors / numpy arrays and scalars
        return jsonable(value.tolist())
    return value


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def new_sibling_dir(target: str | os.PathLike) -> Path:
    """An empty temporary folder beside ``target`` (same file system, so it can be renamed onto it),
    with the permissions of an ordinary new folder."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


# Top-level system folders: never an output folder (a typo such as `--out /usr` must not write there).
SYSTEM_DIRS = frozenset({"bin", "boot", "dev", "etc", "lib", "lib32", "lib64", "libx32", "opt", "proc",
                         "root", "run", "sbin", "srv", "sys", "usr", "var", "home", "tmp", "mnt", "media",
                         "snap", "nix", "Users", "System", "Library", "Applications", "Volumes", "Windows",
                         "Program Files"})


def dangerous_output_dir(path: str | os.PathLike) -> str | None:
    """Why ``path`` must never be an output folder, or ``None``: the file system's root (``/``,
    ``C:\\``), a top-level system folder (``/usr``, ``/etc``, ...), or the user's home folder itself
    (a sub-folder of it is fine). Symlinks and ``..`` are resolved first."""
    resolved = Path(os.path.expanduser(os.fspath(path))).resolve()
    if resolved == Path(resolved.anchor):
        return "the root of the file system"
    try:
        home = Path.home().resolve()
    except (RuntimeError, KeyError, OSError):  # no home folder known
        home = None
    if resolved == home:
        return "your home folder itself"
    if resolved.parent == Path(resolved.anchor) and resolved.name in SYSTEM_DIRS:
        return "a system folder"
    return None


class OutputFolderError(RBCrossclassError, FileExistsError):
    """An output folder that is not ours to replace; the message names it."""


def replace_dir(new: str | os.PathLike, target: str | os.PathLike,
                owned: Callable[[Path], bool] | None = None) -> None:
    """Put folder ``new`` in place of ``target`` with renames only.

    The previous ``target`` is moved to ``<target>.old`` first and removed once ``new`` is in
    place; if that rename fails the previous folder is put back. A crash between the two renames
    leaves the previous folder intact as ``<target>.old`` (never a half-written ``target``). An
    existing ``<target>.old`` is removed only when ``owned(old)`` says it is ours (default: always);
    otherwise :class:`OutputFolderError` is raised and nothing is touched.
    """
    new, target = Path(new), Path(target)
    old = target.with_name(target.name + ".old")
    if old.exists() and owned is not None and not owned(old):
        raise OutputFolderError(f"{old} exists and was not written by rb-crossclass: move it away first")
    if target.exists():  # else a crash mid-swap may have left only ``old``: keep it until ``new`` is in
        if old.exists():
            shutil.rmtree(old)
        os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        if old.exists() and not target.exists():
            os.replace(old, target)
        raise
    if old.exists():
        shutil.rmtree(old)


class OutputLocationError(RBCrossclassError, OSError):
    """An output folder cannot be written; raised before any work, naming the flag and the cause."""


def _probe_once(target: Path, path: str | os.PathLike, flag: str) -> None:
    """One attempt of :func:`check_output_dir`. A folder another process creates at the same time
    counts as existing (and is not ours to remove); a folder removed under us raises
    ``FileNotFoundError`` for the caller to retry."""
    created: list[Path] = []
    try:
        for folder in [*reversed(target.parents), target]:
            if not folder.exists():
                try:
                    folder.mkdir()
                    created.append(folder)
                    continue
                except FileExistsError:
                    pass  # created by another process a moment ago
            if not folder.is_dir():
                raise OutputLocationError(f"cannot write to {flag} {str(path)[:200]}: "
                                          f"{str(folder)[:200]} is a file, not a folder")
        fd, probe = tempfile.mkstemp(dir=target, prefix=".rb-crossclass-write-check.")
        os.close(fd)
        os.unlink(probe)
    except (OutputLocationError, FileNotFoundError):
        raise
    except OSError as err:
        raise OutputLocationError(f"cannot write to {flag} {str(path)[:200]}: "
                                  f"{err.strerror or type(err).__name__} (checked before any work)") from err
    finally:
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:  # not empty: another process is writing there
                pass


def check_output_dir(path: str | os.PathLike, flag: str = "--out") -> Path:
    """Make sure results can be written under ``path`` *before* any computation: every command
    calls this for each of its output folders before a model is built or data is read.

    Creates the missing folders, writes and removes a probe file in the deepest one, then removes
    the folders it created (the file system is left as it was), so every way writing can fail (a
    component that is a file, a read-only folder, ``/proc``, a full or read-only file system) fails
    here, as one line naming ``flag``. Returns the path.
    """
    target = Path(path)
    for attempt in range(5):  # torchrun ranks check the same folder at once: see _probe_once
        try:
            _probe_once(target, path, flag)
            break
        except FileNotFoundError as err:  # another rank removed a folder it had created meanwhile
            if attempt == 4:
                raise OutputLocationError(f"cannot write to {flag} {str(path)[:200]}: "
                                          f"{err.strerror or type(err).__name__} (checked before any work)"
                                          ) from err
    return target
