"""AutoAttack speed: bare pyautoattack against ``rb-crossclass evaluate``, whole processes.

For each model and thread count, in one run and on the same points, four processes are timed
back to back (wall clock, interpreter start to exit):

- ``bare``: a script as a user writes it: the model built and loaded by hand, pyautoattack's
  ``AutoAttack(...).run_standard_evaluation``;
- ``evaluate --no-cas``: our AutoAttack alone (the faster attack model, the default);
- ``evaluate --no-cas --aa-exact``: our AutoAttack on the model as it is (bare arithmetic);
- ``evaluate``: the whole command (AutoAttack, CAS on its examples, the PGD-20 protocol, card).

Reported per row: the process wall time, the AutoAttack time inside it (the attacks only, from
pyautoattack's own loop for ``bare`` and ``eval.json``'s stages for ours), the ratios bare / ours
(> 1: ours is faster) and how many per-point robust flags differ from bare pyautoattack's.

Models: pyautoattack's shipped CIFAR-10 ResNet-18 (20 batch norms; a standard model, so at 8/255
APGD-CE breaks every point and the later attacks have nothing left) and advertorch's published
PGD-trained MNIST LeNet5 from ``../shared/checkpoints`` (no batch norm; at ε = 0.3 all four
attacks of the standard version run). Results go to ``benchmarks/results/autoattack_speed.json``.

    .venv/bin/python benchmarks/bench_autoattack_speed.py                      # ~25 min on 2 cores
    .venv/bin/python benchmarks/bench_autoattack_speed.py --models mnist --threads 1 --n-mnist 16
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RB_CROSSCLASS_SHARED", ROOT.parent / "shared"))
CIFAR_NPZ = SHARED / "data" / "cifar10_partial" / "cifar10_test_first1017.npz"
MNIST_ARCHS = ROOT / "leaderboards" / "manifests" / "mnist_archs.py"
MNIST_CKPT = SHARED / "checkpoints" / "mnist" / "advertorch_mnist_lenet5_advtrained.pt"


def _resnet_checkpoint() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("pyautoattack")
    return Path(spec.origin).parent / "examples" / "model_test.pt"


CASES = {
    "resnet18": {
        "what": "pyautoattack's CIFAR-10 ResNet-18 (batch norm, standard training)",
        "eps": "8/255", "batch_size": 250,
        "ours": lambda: ["--model", "py:pyautoattack.examples.resnet:ResNet18",
                         "--checkpoint", str(_resnet_checkpoint()), "--dataset", f"npz:{CIFAR_NPZ}",
                         "--card-dataset", "cifar10"],
    },
    "mnist": {
        "what": "advertorch's PGD-trained MNIST LeNet5 (published; no batch norm)",
        "eps": "0.3", "batch_size": 250,
        "ours": lambda: ["--model", f"py:{MNIST_ARCHS}:advertorch_lenet5", "--checkpoint", str(MNIST_CKPT),
                         "--dataset", "mnist", "--data-dir", str(SHARED / "data")],
    },
}


# --------------------------------------------------------------------------- the bare process
def _mnist_test(n: int):
    """The first ``n`` MNIST test images [n,1,28,28] in [0,1] and labels, read from the idx files."""
    import gzip

    import numpy as np
    import torch

    raw = SHARED / "data" / "MNIST" / "raw"
    with gzip.open(raw / "t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:n]
    with gzip.open(raw / "t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    return torch.from_numpy(images.astype(np.float32) / 255.0), torch.from_numpy(labels.astype(np.int64))


def bare_main(case: str, n: int, batch_size: int, out: Path) -> None:
    """What a user writes with pyautoattack alone; writes flags and the attack time to ``out``."""
    import numpy as np
    import torch
    from pyautoattack import AutoAttack

    if case == "resnet18":
        from pyautoattack.examples.resnet import ResNet18

        model = ResNet18()
        model.load_state_dict(torch.load(_resnet_checkpoint(), map_location="cpu"))
        data = np.load(CIFAR_NPZ)
        x = torch.from_numpy(data["x"][:n]).float()
        x = (x.permute(0, 3, 1, 2) / 255.0 if x.shape[-1] == 3 else x).contiguous()
        y = torch.from_numpy(data["y"][:n]).long()
        eps = 8 / 255
    else:
        import importlib.util

        spec = importlib.util.spec_from_file_location("mnist_archs", MNIST_ARCHS)
        archs = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(archs)
        model = archs.advertorch_lenet5()
        state = torch.load(MNIST_CKPT, map_location="cpu")
        model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
        x, y = _mnist_test(n)
        eps = 0.3
    model.eval()
    adversary = AutoAttack(model, norm="Linf", eps=eps, version="standard", seed=0)
    adversary.verbose = False
    t0 = time.perf_counter()
    x_adv, _ = adversary.run_standard_evaluation(x, y, batch_size=batch_size)
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        flags = model(x_adv).argmax(1).eq(y)
    out.write_text(json.dumps({"robust_flags": "".join("1" if f else "0" for f in flags.tolist()),
                               "autoattack_seconds": seconds}))


# --------------------------------------------------------------------------- the parent
def _run(cmd: list[str], threads: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "PYTHONPATH": str(ROOT), "RB_CROSSCLASS_SHARED": str(SHARED)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return wall


def _ours(case: str, n: int, threads: int, work: Path, *extra: str) -> dict:
    spec = CASES[case]
    out = work / f"ours_{len(list(work.iterdir()))}"
    cmd = [sys.executable, "-m", "rb_crossclass", "evaluate", *spec["ours"](), "--n-examples", str(n),
           "--eps", spec["eps"], "--batch-size", str(spec["batch_size"]), "--device", "cpu",
           "--no-progress", "--out", str(out), *extra]
    wall = _run(cmd, threads)
    record = json.loads((out / "eval.json").read_text())
    stages = record["seconds_by_stage"]
    not_attacks = ("checks", "clean", "cas", "cas_pgd")
    return {"wall_s": wall, "autoattack_s": sum(v for k, v in stages.items() if k not in not_attacks),
            "robust_flags": record["robust_flags"],
            "attacks_run": [k for k in record["robust_after_attack"] if k != "clean"],
            "autoattack_model": record.get("attack_model")}


def _bare(case: str, n: int, threads: int, work: Path) -> dict:
    out = work / "bare.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--role-bare", case, "--n", str(n),
           "--batch-size", str(CASES[case]["batch_size"]), "--bare-out", str(out)]
    wall = _run(cmd, threads)
    record = json.loads(out.read_text())
    return {"wall_s": wall, "autoattack_s": record["autoattack_seconds"],
            "robust_flags": record["robust_flags"]}


def _flips(a: str, b: str) -> int:
    return sum(u != v for u, v in zip(a, b, strict=True))


ROWS = {"evaluate --no-cas": ("--no-cas",), "evaluate --no-cas --aa-exact": ("--no-cas", "--aa-exact"),
        "evaluate": ()}


def measure(case: str, n: int, threads: int, rows_wanted: list[str] | None = None) -> dict:
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        rows = {"bare": _bare(case, n, threads, work)}
        for name, extra in ROWS.items():
            if rows_wanted is None or name in rows_wanted:
                rows[name] = _ours(case, n, threads, work, *extra)
    bare = dict(rows["bare"])
    for row in rows.values():
        row["flips_vs_bare"] = _flips(row["robust_flags"], bare["robust_flags"])
        row["robust"] = row["robust_flags"].count("1")
        row["wall_speedup_vs_bare"] = bare["wall_s"] / row["wall_s"]
        row["autoattack_speedup_vs_bare"] = bare["autoattack_s"] / row["autoattack_s"]
        del row["robust_flags"]
    return {"case": case, "what": CASES[case]["what"], "n_examples": n, "eps": CASES[case]["eps"],
            "version": "standard", "batch_size": CASES[case]["batch_size"], "threads": threads, "rows": rows}


def _load() -> list[float]:
    try:
        return list(os.getloadavg())
    except OSError:
        return []


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", choices=sorted(CASES), default=["resnet18", "mnist"])
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--n-resnet", type=int, default=16, help="CIFAR-10 points for the ResNet-18 (default 16)")
    p.add_argument("--n-mnist", type=int, default=16, help="MNIST points for the LeNet5 (default 16)")
    p.add_argument("--rows", nargs="+", choices=list(ROWS), default=None,
                   help="our processes to time against bare (default: all three)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "autoattack_speed.json")
    p.add_argument("--role-bare", choices=sorted(CASES), help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--batch-size", type=int, help=argparse.SUPPRESS)
    p.add_argument("--bare-out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.role_bare:
        bare_main(args.role_bare, args.n, args.batch_size, args.bare_out)
        return
    missing = [str(f) for f in (CIFAR_NPZ, MNIST_CKPT) if not f.is_file()]
    if missing:
        sys.exit(f"needs the shared data and checkpoints (RB_CROSSCLASS_SHARED): missing {missing}")
    results = {"benchmark": "AutoAttack: bare pyautoattack vs rb-crossclass evaluate (whole processes)",
               "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": {"platform": platform.platform(),
               "cpus": os.cpu_count()}, "load_average_start": _load(),
               "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset: bare runs with OpenMP's default, "
                                                 "rb-crossclass sets PASSIVE"), "results": []}
    for case in args.models:
        n = args.n_resnet if case == "resnet18" else args.n_mnist
        for threads in args.threads:
            r = measure(case, n, threads, args.rows)
            r["load_average_end"] = _load()
            results["results"].append(r)
            print(f"\n{case} ({r['what']}), {n} points, eps {r['eps']}, {threads} thread(s)")
            print(f"  {'process':<30} {'wall s':>8} {'AA s':>8} {'bare/ours wall':>15} {'bare/ours AA':>13} "
                  f"{'robust':>7} {'flips':>6}")
            for name, row in r["rows"].items():
                print(f"  {name:<30} {row['wall_s']:>8.1f} {row['autoattack_s']:>8.1f} "
                      f"{row['wall_speedup_vs_bare']:>15.2f} {row['autoattack_speedup_vs_bare']:>13.2f} "
                      f"{row['robust']:>7d} {row['flips_vs_bare']:>6d}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
