"""Where and how work runs: device, CPU threads, ``torchrun`` ranks and sharding.

Used by every stage that computes (train, evaluate, score, sweep), so device strings, thread
counts and rank set-up mean the same everywhere:

- :func:`resolve_device` turns ``None``/``"auto"``/``"cpu"``/``"cuda:N"`` into a ``torch.device``
  (a clear error for unknown strings or a missing GPU);
- :func:`require_bf16` refuses bf16 where the hardware has no native bf16 arithmetic (the one
  check behind ``score --bf16``, evaluate's scoring and training's ``runtime.bf16``);
- :func:`prefers_channels_last` is the rule that turns channels_last on by default;
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
from pathlib import Path
from typing import Any

import torch

from .errors import RBCrossclassError


class RuntimeSetupError(RBCrossclassError, RuntimeError):
    """A device or distributed set-up cannot be used here; the message says why."""


class Bf16UnsupportedError(RuntimeSetupError):
    """bf16 was asked for on a device without native bf16 arithmetic; the message names the device."""


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


# CPU feature flags (Linux /proc/cpuinfo names) that give native bf16 arithmetic: x86 AVX-512 BF16
# (Cooper Lake and later, AMD Zen 4 and later) or AMX-BF16 (Sapphire Rapids and later); aarch64
# BF16 (Armv8.6, e.g. Neoverse V1/N2, Graviton3). Without them oneDNN emulates bf16 through fp32
# and bf16 is no faster, only less precise.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (x86 ``flags``, aarch64 ``Features``);
    empty where that file cannot be read (not Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def _cuda_bf16(device: torch.device) -> bool:
    index = device.index if device.index is not None else torch.cuda.current_device()
    major, _ = torch.cuda.get_device_capability(index)
    return major >= 8  # Ampere and later run bf16 natively; older GPUs only emulate it


def bf16_unsupported_reason(device: torch.device | str) -> str | None:
    """``None`` when ``device`` computes in bf16 natively, else why not (one sentence).

    CPU: one of :data:`BF16_CPU_FLAGS` in :func:`cpu_flags`. CUDA: compute capability ≥ 8.0
    (Ampere or later). Other devices: not supported.
    """
    device = torch.device(device)
    if device.type == "cpu":
        flags = cpu_flags()
        if not flags:
            return "this CPU's feature flags cannot be read (no /proc/cpuinfo): native bf16 unconfirmed"
        if not flags.intersection(BF16_CPU_FLAGS):
            return "this CPU has no native bf16 arithmetic (none of the flags avx512_bf16, amx_bf16, bf16)"
        return None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return "CUDA is not available on this machine"
        if not _cuda_bf16(device):
            name = torch.cuda.get_device_name(device)
            return f"GPU {name} has no native bf16 (compute capability < 8.0)"
        return None
    return f"bf16 is supported on cpu and cuda devices only, not {device.type}"


def require_bf16(device: torch.device | str, what: str = "bf16") -> None:
    """Raise :class:`Bf16UnsupportedError` (``"<what>: ... run in float32 instead"``) when
    ``device`` lacks native bf16 (:func:`bf16_unsupported_reason`)."""
    reason = bf16_unsupported_reason(device)
    if reason is not None:
        raise Bf16UnsupportedError(f"{what}: {reason}; run in float32 instead (leave bf16 off)")


def prefers_channels_last(model: torch.nn.Module, device: torch.device | str) -> bool:
    """The default memory format rule: channels_last for a model with 2-D convolutions on a CPU
    with oneDNN (its NHWC convolution kernels are faster than its NCHW ones; measured per PGD
    step in ``benchmarks/bench_crossclass.py``) or on CUDA (cuDNN's tensor-core kernels are NHWC;
    not measured in this project, which had no GPU); contiguous NCHW otherwise. A fixed rule, not a timing
    probe, so the choice (which changes float rounding) never depends on the machine's load."""
    device = torch.device(device)
    if not any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):
        return False
    if device.type == "cpu":
        return bool(torch.backends.mkldnn.is_available())
    return device.type == "cuda"


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
