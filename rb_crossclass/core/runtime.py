"""Where and how work runs: device, CPU threads, ``torchrun`` ranks and sharding.

Used by every stage that computes (train, evaluate, score, sweep), so device strings, thread
counts and rank set-up mean the same everywhere:

- :func:`resolve_device` turns ``None``/``"auto"``/``"cpu"``/``"cuda:N"`` into a ``torch.device``
  (a clear error for unknown strings or a missing GPU);
- :func:`cpu_threads` picks the intra-op thread count from ``OMP_NUM_THREADS``,
  ``SLURM_CPUS_PER_TASK`` or the CPUs this process may run on (never more), and
  :func:`set_cpu_threads` applies it (every CLI command does, before its work);
- :class:`Ranks` is this process's place in a ``torchrun`` job (rank, world size, local rank) with
  the collective operations the stages need; :func:`distributed` joins the job's process group
  (gloo on CPU, nccl on GPU) for the duration of a block; batch ``b`` of a sharded pass belongs to
  rank ``b % world_size`` (:meth:`Ranks.owns`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from .errors import RBCrossclassError


class RuntimeSetupError(RBCrossclassError, RuntimeError):
    """A device or distributed set-up cannot be used here; the message says why."""


def resolve_device(name: str | None) -> torch.device:
    """``None`` or ``"auto"``: CUDA when available, else CPU; otherwise ``"cpu"``, ``"cuda"``,
    ``"cuda:N"`` (checked to exist)."""
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise RuntimeSetupError(f"device {name!r} is not a device: use cpu, cuda or cuda:N") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeSetupError(f"device {name}: CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise RuntimeSetupError(f"device {name}: this machine has {torch.cuda.device_count()} GPU(s)")
    elif device.type != "cpu":
        raise RuntimeSetupError(f"device {name!r}: only cpu and cuda devices are supported")
    return device


def cpu_threads(environ: dict[str, str] | None = None) -> int:
    """Intra-op CPU threads to use: ``OMP_NUM_THREADS`` when set, else ``SLURM_CPUS_PER_TASK``,
    else the number of CPUs this process may run on (its affinity mask); at least 1."""
    env = os.environ if environ is None else environ
    for key in ("OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK"):
        value = env.get(key, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def set_cpu_threads(environ: dict[str, str] | None = None) -> int:
    """Use :func:`cpu_threads` intra-op threads in this process (``torch.set_num_threads``);
    returns the number. torch's own default ignores ``SLURM_CPUS_PER_TASK`` and the affinity
    mask (it counts the machine's cores), which oversubscribes shared and batch machines."""
    n = cpu_threads(environ)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


@dataclass(frozen=True)
class Ranks:
    """This process's place in a (possibly one-process) job: ``rank`` in ``[0, world_size)`` and
    ``local_rank`` on its machine. One process: ``Ranks()``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes results and prints."""
        return self.rank == 0

    @classmethod
    def current(cls) -> Ranks:
        """The ranks of the initialized ``torch.distributed`` group (one process when none)."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
        return cls()

    def owns(self, batch: int) -> bool:
        """Whether batch ``batch`` of a sharded pass is this rank's (``batch % world_size``)."""
        return batch % self.world_size == self.rank

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over ranks in place (no-op for one process); returns it."""
        if self.world_size > 1:
            import torch.distributed as dist

            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """Mean of ``tensor`` over ranks (a new tensor)."""
        if self.world_size == 1:
            return tensor
        return self.sum_(tensor.clone()) / self.world_size

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's picklable ``obj`` in rank order (``[obj]`` for one process)."""
        if self.world_size == 1:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def sum_ints(self, values: dict[str, int]) -> dict[str, int]:
        """Integer counters summed over ranks, key by key."""
        totals: dict[str, int] = {}
        for part in self.gather(dict(values)):
            for key, value in part.items():
                totals[key] = totals.get(key, 0) + value
        return totals


@contextlib.contextmanager
def distributed(device: str | None = None) -> Iterator[tuple[Ranks, torch.device]]:
    """Join the ``torchrun`` job (``WORLD_SIZE > 1``) for the block; yields ``(ranks, device)``.

    One process: ``Ranks()`` and :func:`resolve_device` of ``device``. Under torchrun the process
    group is created (nccl for CUDA, gloo for CPU) unless one exists, each rank takes GPU
    ``LOCAL_RANK`` when the device is CUDA, and a group created here is destroyed afterwards.
    """
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        yield Ranks(), resolve_device(device)
        return
    import torch.distributed as dist

    dev = resolve_device(device)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    created = not dist.is_initialized()
    if created:
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    try:
        yield Ranks(dist.get_rank(), dist.get_world_size(), local), dev
    finally:
        if created and dist.is_initialized():
            dist.destroy_process_group()
