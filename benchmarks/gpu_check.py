"""One short device check: scorer and AutoAttack throughput, the AutoAttack speed-up, and MFU.

Made for a lent GPU machine (under 5 minutes on one GPU with the defaults), and runnable end to
end on CPU (``--device cpu``; ``--model tiny --quick`` for a test-sized run). Measures, on
pyautoattack's shipped CIFAR-10 ResNet-18 (or ``--model tiny``: a small batch-norm CNN) and random
[0,1] images with labels set to the model's predictions (so every point is attacked):

- **scorer throughput** (images/s) of ``score_model`` (the paper's PGD-20 protocol + attribution)
  in float32 and, where the device has native bf16, in bf16;
- **AutoAttack throughput** (images/s) of APGD-CE (100 iterations) through ``run_autoattack``
  with the faster attack model, with ``exact=True`` (the model as it is), and bare pyautoattack's
  ``run_standard_evaluation``; the ratios bare / ours and the flags that differ;
- **MFU** of the scorer: FLOPs of one scoring pass counted with ``torch.utils.flop_counter``
  (convolutions and matrix products, forward and backward; elementwise work not counted),
  divided by the pass's time, against (a) the dense matrix-multiply FLOP/s measured here in the
  same dtype (always), and (b) the vendor's peak for known GPUs (H100 SXM / H200: 67 TFLOP/s
  float32 without tensor cores, 989 TFLOP/s dense bf16; A100: 19.5 / 312).

Writes a JSON file (``--out``) and prints a table.

    bash benchmarks/gpu_check.sh                          # on a GPU machine
    bash benchmarks/gpu_check.sh --device cpu --model tiny --quick
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]

VENDOR_PEAK_TFLOPS = {  # dense, without sparsity: (float32 without tensor cores, bf16 tensor cores)
    "H100": (67.0, 989.0), "H200": (67.0, 989.0), "A100": (19.5, 312.0),
}


class TinyBNNet(nn.Module):
    """[B,3,32,32] -> [B,10]: two conv-BN-ReLU blocks and a linear head (a CPU test-sized model)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))


def build_model(name: str) -> nn.Module:
    from rb_crossclass.models import create_model_source, wrap_model

    if name == "tiny":
        torch.manual_seed(0)
        return wrap_model(TinyBNNet().eval()).eval()
    import pyautoattack

    ckpt = Path(pyautoattack.__file__).parent / "examples" / "model_test.pt"
    return create_model_source("py:pyautoattack.examples.resnet:ResNet18", checkpoint=str(ckpt)).eval()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device):
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - t0


def matmul_peak(device: torch.device, dtype: torch.dtype, size: int, repeat: int) -> float:
    """Dense matrix-multiply FLOP/s measured here: ``repeat`` products of two size x size matrices."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b  # warm-up
    _, seconds = timed(lambda: [a @ b for _ in range(repeat)], device)
    return 2 * size ** 3 * repeat / seconds


def counted_flops(fn) -> int:
    """FLOPs of everything ``fn`` runs, counted by ``torch.utils.flop_counter.FlopCounterMode``."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def vendor_peak(device: torch.device) -> tuple[str, tuple[float, float]] | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peak in VENDOR_PEAK_TFLOPS.items():
        if key in name:
            return name, peak
    return None


def main() -> None:
    from rb_crossclass.attacks import PGDConfig
    from rb_crossclass.core.runtime import bf16_unsupported_reason
    from rb_crossclass.crossclass import ComputeSettings, score_model
    from rb_crossclass.evaluate import AutoAttackConfig, run_autoattack

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--model", choices=["resnet18", "tiny"], default="resnet18")
    p.add_argument("--quick", action="store_true", help="test-sized: few images, small matrices")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gpu_check.json")
    args = p.parse_args()
    logging.getLogger("rb_crossclass").setLevel(logging.ERROR)  # random images leave classes empty
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available on this machine; run with --device cpu")
    gpu = device.type == "cuda"
    n_score = 4 if args.quick else (2048 if gpu else 64)
    n_aa = 4 if args.quick else (512 if gpu else 16)
    aa_batch = 4 if args.quick else (256 if gpu else 16)
    mm = (512, 4) if args.quick else ((8192, 20) if gpu else (1024, 5))

    model = build_model(args.model).to(device).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(max(n_score, n_aa), 3, 32, 32, generator=g)
    with torch.no_grad():
        y = torch.cat([model(x[i:i + 256].to(device)).argmax(1).cpu() for i in range(0, len(x), 256)])
    report: dict = {"device": str(device), "device_name": torch.cuda.get_device_name(device) if gpu else
                    platform.processor() or platform.machine(), "model": args.model,
                    "threads": torch.get_num_threads(), "torch": torch.__version__,
                    "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "quick": args.quick}

    # ---- scorer: throughput and MFU, float32 and bf16
    attack = PGDConfig(eps=8 / 255, steps=20)
    scorer = {}
    bf16_reason = bf16_unsupported_reason(device)
    for dtype_name, autocast in (("float32", False), ("bfloat16", True)):
        if autocast and bf16_reason:
            scorer[dtype_name] = {"skipped": bf16_reason}
            continue

        def run(k: int, autocast: bool = autocast):
            return score_model(model, x[:k], y[:k], attack=attack,
                               compute=ComputeSettings(device=device, bf16=autocast),
                               progress=False)

        k = min(8, n_score)  # images of the warm-up and of the counted pass
        run(k)  # warm-up (kernels, allocator)
        _, seconds = timed(lambda: run(n_score), device)
        flops_per_image = counted_flops(lambda k=k: run(k)) / k
        achieved = flops_per_image * n_score / seconds
        peak_here = matmul_peak(device, torch.bfloat16 if autocast else torch.float32, *mm)
        row = {"images": n_score, "seconds": seconds, "images_per_s": n_score / seconds,
               "flops_per_image": flops_per_image, "achieved_tflops": achieved / 1e12,
               "matmul_peak_tflops": peak_here / 1e12, "mfu_vs_matmul_peak": achieved / peak_here}
        vendor = vendor_peak(device)
        if vendor is not None:
            peak = vendor[1][1 if autocast else 0] * 1e12
            row["vendor_peak_tflops"] = peak / 1e12
            row["mfu_vs_vendor_peak"] = achieved / peak
        scorer[dtype_name] = row
    report["scorer"] = scorer

    # ---- AutoAttack: ours (fast, exact) and bare pyautoattack, same points, APGD-CE
    from pyautoattack import AutoAttack

    xa, ya = x[:n_aa].contiguous(), y[:n_aa]
    cfg = AutoAttackConfig(eps=0.5 / 255, version="custom", attacks=("apgd-ce",), batch_size=aa_batch)
    aa = {}
    for name in ("ours", "ours_exact"):
        outcome, seconds = timed(lambda name=name: run_autoattack(model, xa, ya, cfg, device=device,
                                                                  progress=False, checks=False,
                                                                  exact=name == "ours_exact"), device)
        aa[name] = {"seconds": seconds, "images_per_s": n_aa / seconds,
                    "robust": int(outcome.robust_flags.sum()), "flags": outcome.robust_flags,
                    "attack_model": outcome.attack_model}
    adversary = AutoAttack(model, norm="Linf", eps=cfg.eps, version="custom", attacks=["apgd-ce"], seed=0,
                           device=device)
    adversary.verbose = False
    (x_adv, _), seconds = timed(lambda: adversary.run_standard_evaluation(xa, ya, batch_size=aa_batch),
                                device)
    with torch.no_grad():
        bare_flags = torch.cat([model(x_adv[i:i + 256].to(device)).argmax(1).cpu()
                                for i in range(0, n_aa, 256)]).eq(ya)
    aa["bare"] = {"seconds": seconds, "images_per_s": n_aa / seconds, "robust": int(bare_flags.sum())}
    for name in ("ours", "ours_exact"):
        aa[name]["speedup_vs_bare"] = aa["bare"]["seconds"] / aa[name]["seconds"]
        aa[name]["flips_vs_bare"] = int((aa[name].pop("flags") != bare_flags).sum())
    report["autoattack"] = {"attack": "apgd-ce (100 iterations), eps 0.5/255, labels = predictions",
                            "images": n_aa, "batch_size": aa_batch, **aa}

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"device {report['device_name']} ({device}), model {args.model}, threads {report['threads']}")
    for dtype_name, row in scorer.items():
        if "skipped" in row:
            print(f"scorer {dtype_name:<8}: skipped ({row['skipped']})")
            continue
        vendor = (f", {100 * row['mfu_vs_vendor_peak']:.1f}% of the vendor's "
                  f"{row['vendor_peak_tflops']:.0f} TFLOP/s") if "mfu_vs_vendor_peak" in row else ""
        print(f"scorer {dtype_name:<8}: {row['images_per_s']:9.1f} images/s (PGD-20 protocol + "
              f"attribution), {row['flops_per_image'] / 1e9:.2f} GFLOP/image counted over the whole "
              f"scoring pass, {row['achieved_tflops'] * 1e3:.2f} GFLOP/s achieved; MFU "
              f"{100 * row['mfu_vs_matmul_peak']:.1f}% of the dense matmul peak measured here "
              f"({row['matmul_peak_tflops'] * 1e3:.1f} GFLOP/s){vendor}")
    print(f"AutoAttack: {report['autoattack']['attack']}, {n_aa} images, batch {aa_batch}")
    for name in ("bare", "ours", "ours_exact"):
        row = aa[name]
        extra = (f", {row['speedup_vs_bare']:.2f}x bare, {row['flips_vs_bare']} flags differ"
                 if name != "bare" else "")
        print(f"AutoAttack {name:<10}: {row['images_per_s']:9.2f} images/s{extra}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
