"""Is bf16 scoring inside the attack's own randomness? CAS over seeds in fp32, and bf16 − fp32.

For each model: the default scorer (``rb_crossclass.scoring.score_model``, PGD-20 ℓ∞ 8/255) on
the first ``--n-examples`` test images, once per seed in fp32 and once per seed in bf16
(``autocast=True``, what ``score --bf16`` runs). The seed-to-seed spread of the fp32 CAS (the
random start is the attack's only randomness) is the yardstick; the bf16 − fp32 difference on
the same seed is what bf16 adds. The clean CAS has no randomness, so its bf16 − fp32 difference is
bf16's rounding alone.

    .venv/bin/python benchmarks/bench_bf16_spread.py --threads 1        # ~50 min on 1 core

Writes ``benchmarks/results/bf16_spread_<date>.json`` (``--out`` to choose another path).
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from rb_crossclass.attacks import PGDConfig
from rb_crossclass.core.io import atomic_write_json
from rb_crossclass.core.provenance import package_versions
from rb_crossclass.core.runtime import require_bf16
from rb_crossclass.crossclass import ComputeSettings
from rb_crossclass.data import load_dataset, shared_data_dir
from rb_crossclass.models import create_model_source
from rb_crossclass.scoring import score_model

ROOT = Path(__file__).resolve().parent.parent
RESNET18 = "py:pyautoattack.examples.resnet:ResNet18"
ZOO_PGD_AT = "zoo:RBCrossclass2025CPU_PGD-AT"


def load(source: str):
    checkpoint = None
    if source == RESNET18:
        import pyautoattack

        checkpoint = str(Path(pyautoattack.__file__).parent / "examples" / "model_test.pt")
    return create_model_source(source, checkpoint=checkpoint)


def spread(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "range": max(values) - min(values)}


def run_model(source: str, x: torch.Tensor, y: torch.Tensor, seeds: list[int], eps: float) -> dict:
    model = load(source)
    attack = PGDConfig(eps=eps)
    rows = []
    for seed in seeds:
        row = {"seed": seed}
        for tag, bf16 in (("fp32", False), ("bf16", True)):
            t0 = time.perf_counter()
            r = score_model(model, x, y, attack=attack, seed=seed, compute=ComputeSettings(bf16=bf16),
                            progress=False)
            row[tag] = {"cas": r.cas, "clean_cas": r.clean_cas, "robust_accuracy": r.robust_accuracy,
                        "clean_accuracy": r.clean_accuracy, "seconds": time.perf_counter() - t0,
                        "compute": r.compute}
        rows.append(row)
        print(f"  {source} seed {seed}: CAS fp32 {row['fp32']['cas']:.4f} bf16 {row['bf16']['cas']:.4f} "
              f"(diff {row['bf16']['cas'] - row['fp32']['cas']:+.4f}); robust acc fp32 "
              f"{row['fp32']['robust_accuracy']:.3f} bf16 {row['bf16']['robust_accuracy']:.3f}", flush=True)
    fp = [r["fp32"]["cas"] for r in rows]
    diff = [r["bf16"]["cas"] - r["fp32"]["cas"] for r in rows]
    clean_diff = rows[0]["bf16"]["clean_cas"] - rows[0]["fp32"]["clean_cas"]
    summary = {
        "fp32_cas": spread(fp), "bf16_cas": spread([r["bf16"]["cas"] for r in rows]),
        "bf16_minus_fp32": spread(diff), "max_abs_bf16_minus_fp32": max(abs(d) for d in diff),
        "clean_cas_fp32": rows[0]["fp32"]["clean_cas"], "clean_cas_bf16_minus_fp32": clean_diff,
        "fp32_robust_accuracy": spread([r["fp32"]["robust_accuracy"] for r in rows]),
        "bf16_minus_fp32_robust_accuracy": spread(
            [r["bf16"]["robust_accuracy"] - r["fp32"]["robust_accuracy"] for r in rows]),
        "seconds_fp32": statistics.fmean(r["fp32"]["seconds"] for r in rows),
        "seconds_bf16": statistics.fmean(r["bf16"]["seconds"] for r in rows),
    }
    summary["bf16_within_seed_spread"] = summary["max_abs_bf16_minus_fp32"] <= summary["fp32_cas"]["range"]
    s = summary
    print(f"  {source}: fp32 CAS {s['fp32_cas']['mean']:.4f} ± {s['fp32_cas']['std']:.4f} (sd over "
          f"{len(seeds)} seeds, range {s['fp32_cas']['range']:.4f}); bf16 − fp32 mean "
          f"{s['bf16_minus_fp32']['mean']:+.4f}, max |.| {s['max_abs_bf16_minus_fp32']:.4f} -> "
          f"{'within' if s['bf16_within_seed_spread'] else 'OUTSIDE'} the seed range; clean CAS bf16 − fp32 "
          f"{clean_diff:+.4f}", flush=True)
    return {"per_seed": rows, "summary": summary}


def main() -> int:
    shared = shared_data_dir()
    test_npz = shared / "cifar10_partial" / "cifar10_test_first1017.npz" if shared else None
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=f"{RESNET18},{ZOO_PGD_AT}", help="comma-separated model sources")
    ap.add_argument("--dataset", default=f"npz:{test_npz}" if test_npz else "cifar10")
    ap.add_argument("--dataset-name", default="cifar10")
    ap.add_argument("--n-examples", type=int, default=1000)
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--eps", type=float, default=8 / 255)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=None, help="default benchmarks/results/bf16_spread_<date>.json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    require_bf16("cpu", "bf16 spread")
    seeds = [int(s) for s in args.seeds.split(",")]
    x, y = load_dataset(args.dataset, "test", args.n_examples, dataset_name=args.dataset_name)
    out_path = Path(args.out) if args.out else (
        ROOT / "benchmarks" / "results" / f"bf16_spread_{datetime.date.today().isoformat()}.json")
    record = {"benchmark": "CAS seed spread (fp32) and bf16 - fp32 on the same seeds",
              "dataset": args.dataset, "n_examples": len(y), "seeds": seeds, "eps": args.eps,
              "attack": "PGD-20 Linf, step eps/4, random start", "threads": torch.get_num_threads(),
              "date": datetime.datetime.now().isoformat(timespec="seconds"),
              "load_average_start": os.getloadavg(), "versions": package_versions(), "models": {}}
    print(f"{len(y)} images of {args.dataset}, seeds {seeds}, {torch.get_num_threads()} thread(s)",
          flush=True)
    for source in args.models.split(","):
        record["models"][source] = run_model(source, x, y, seeds, args.eps)
        atomic_write_json(out_path, record)
    record["load_average_end"] = os.getloadavg()
    atomic_write_json(out_path, record)
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
