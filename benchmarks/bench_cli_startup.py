"""How long does ``rb-crossclass`` take to answer ``--help`` and an argument error?

Each case is a fresh interpreter running ``python -m rb_crossclass ...`` (what the console script
runs), timed from spawn to exit: ``--help``, ``<command> --help`` for every command, and one
argument error (``sweep`` without its required flags, exit status 1). The median of ``--runs``
runs per case is reported (the first run of a case warms the file cache and is not counted), with
the modules torch/timm/robustbench/ray/matplotlib the case imported (read from ``-X importtime``
of one extra run). The target of issue 23 is <= 1.5 s per case on the project's 2-core machine.

    .venv/bin/python benchmarks/bench_cli_startup.py              # ~1 min on 2 cores

Writes ``benchmarks/results/cli_startup.json`` (``--out`` to choose another path).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rb_crossclass.cli import COMMANDS
from rb_crossclass.core.io import atomic_write_json
from rb_crossclass.core.provenance import now_iso

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "timm", "robustbench", "ray", "matplotlib")
TARGET_SECONDS = 1.5


def cases() -> dict[str, tuple[list[str], int]]:
    """Name -> (arguments, expected exit status): ``help`` (``--help``), ``<command> help``
    (``<command> --help``) and ``sweep error`` (``sweep`` without its required flags)."""
    found = {"help": (["--help"], 0)}
    found.update({f"{name} help": ([name, "--help"], 0) for name in COMMANDS})
    found["sweep error"] = (["sweep"], 1)
    return found


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def time_case(args: list[str], status: int, runs: int) -> dict:
    """Median wall seconds of ``runs`` fresh runs of ``python -m rb_crossclass *args`` (after one
    uncounted warm-up run) and the heavy modules it imported. Raises ``RuntimeError`` when the
    exit status is not ``status``."""
    command = [sys.executable, "-m", "rb_crossclass", *args]
    seconds = []
    for i in range(runs + 1):
        start = time.perf_counter()
        proc = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)
        elapsed = time.perf_counter() - start
        if proc.returncode != status:
            raise RuntimeError(f"{' '.join(args)}: exit status {proc.returncode}, expected {status}: "
                               f"{proc.stderr[-500:]}")
        if i:
            seconds.append(elapsed)
    proc = subprocess.run([sys.executable, "-X", "importtime", *command[1:]], env=_env(),
                          capture_output=True, text=True, timeout=300)
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    return {"args": args, "exit_status": status, "runs": runs, "median_seconds": statistics.median(seconds),
            "min_seconds": min(seconds), "max_seconds": max(seconds),
            "heavy_imports": sorted(m for m in HEAVY if m in imported)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per case (default 5)")
    parser.add_argument("--cases", nargs="+", default=None, metavar="NAME",
                        help="only these cases (as named in the output, e.g. help 'train help')")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cli_startup.json")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    chosen = cases()
    if args.cases:
        unknown = sorted(set(args.cases) - set(chosen))
        if unknown:
            parser.error(f"unknown case(s) {unknown}; known: {sorted(chosen)}")
        chosen = {name: chosen[name] for name in args.cases}
    rows = {}
    for name, (case_args, status) in chosen.items():
        rows[name] = time_case(case_args, status, args.runs)
        row = rows[name]
        heavy = ", ".join(row["heavy_imports"]) or "none"
        print(f"{name:<24} median {row['median_seconds']:.2f} s (min {row['min_seconds']:.2f}, "
              f"max {row['max_seconds']:.2f}); heavy imports: {heavy}", flush=True)
    worst = max(r["median_seconds"] for r in rows.values())
    print(f"slowest median {worst:.2f} s (target <= {TARGET_SECONDS} s)")
    atomic_write_json(args.out, {
        "created": now_iso(), "python": sys.version.split()[0], "machine": platform.machine(),
        "cpus": os.cpu_count(), "target_seconds": TARGET_SECONDS, "slowest_median_seconds": worst,
        "cases": rows,
    })
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
