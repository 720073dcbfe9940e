"""Speed of the CAS scorer against the paper's algorithm: every variant, one run, one JSON.

The paper's algorithm (Wei, Guo & Wang, ICML 2025) is :mod:`rb_crossclass.crossclass.reference`:
per-class batches of ``--class-batch`` (the paper's 100), PGD-20 whose ``loss.backward()`` also
fills parameter gradients, NCHW, the features recomputed after the attack, fp32. Ours is
``rb-crossclass score`` (input-only gradients, mixed-class batches, the last PGD forward's features
reused) with its defaults (channels_last by rule, 64-image batches on CPU, batch norms folded into
the convolutions before them), and with ``--bf16``.

For every ``--threads`` setting (``all`` = the CPUs this process may use) the run has three parts:

1. **headline**: whole processes, timed from start to exit (imports, model and data loading,
   scoring, and for ours the JSON and heatmaps), interleaved: the paper's algorithm (this script
   with ``--worker paper``), ``rb-crossclass score``, ``rb-crossclass score --bf16`` (and
   ``--compile`` with ``--headline-compile``);
2. **variants**: seconds per PGD step per 100 images of each candidate, measured in this process
   on the same images, variants interleaved within every round (median of ``--rounds``): the
   paper's step; input-only gradients (NCHW, the paper's batch); + channels_last; + the default
   batch; + folded batch norms (= the default path); + ``torch.compile`` (its compilation time
   measured once); a batch of 256; bf16 (+ compile). The share of convolutions in the default
   step (torch.profiler) gives the fp32 ceiling; the compile time against its saving gives the
   break-even N;
3. **exactness** (first thread setting): the default path's adversarial examples fed to the
   paper's algorithm: their CAS must agree to |ΔC| ≤ 1e-5.

The images are the first ``--per-class`` images of every class in file order (``--per-class`` a
multiple of ``--class-batch``, so both algorithms score exactly the same images). The default file
is the real CIFAR-10 training prefix in ../shared, because the test file holds only 87 images of
class 5 and the paper's batches are 100 per class; speed does not depend on which images.

Examples::

    .venv/bin/python benchmarks/bench_crossclass.py                       # ~40 min on 2 cores
    .venv/bin/python benchmarks/bench_crossclass.py --per-class 10 --class-batch 10 --threads 1 --rounds 1

Writes ``benchmarks/results/bench_crossclass_<date>.json`` (``--out`` to choose another path).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rb_crossclass.attacks import PGDConfig
from rb_crossclass.core.io import atomic_write_json
from rb_crossclass.core.provenance import package_versions
from rb_crossclass.core.runtime import cpu_threads
from rb_crossclass.crossclass import reference_cas, reference_pgd
from rb_crossclass.data import load_dataset, shared_data_dir
from rb_crossclass.models import create_model_source
from rb_crossclass.models.fold import fold_batch_norms
from rb_crossclass.scoring import CPU_BATCH_SIZE, score_model

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = "py:pyautoattack.examples.resnet:ResNet18"


# --------------------------------------------------------------------------- set-up
def default_checkpoint(model: str) -> str | None:
    if model != DEFAULT_MODEL:
        return None
    import pyautoattack

    return str(Path(pyautoattack.__file__).parent / "examples" / "model_test.pt")


def select_per_class(x: torch.Tensor, y: torch.Tensor, per_class: int, k: int):
    """The first ``per_class`` images of every class, in file order."""
    idx = []
    for c in range(k):
        found = torch.nonzero(y == c).flatten()
        if len(found) < per_class:
            sys.exit(f"class {c} has only {len(found)} images here, --per-class {per_class} asked")
        idx.append(found[:per_class])
    idx = torch.cat(idx).sort().values
    return x[idx], y[idx]


def write_npz(path: Path, x: torch.Tensor, y: torch.Tensor) -> None:
    """The selected images as uint8 NHWC (exactly the source file's bytes) for the processes."""
    pixels = (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    np.savez(path, x=pixels, y=y.numpy().astype(np.int64))


def load_model(args):
    return create_model_source(args.model, checkpoint=args.checkpoint or default_checkpoint(args.model))


# --------------------------------------------------------------------------- part 1: whole processes
def run_process(cmd: list[str], threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu, "stdout": proc.stdout}


def headline(args, data: Path, threads: int, work: Path) -> dict:
    model_args = ["--model", args.model]
    ckpt = args.checkpoint or default_checkpoint(args.model)
    if ckpt:
        model_args += ["--checkpoint", ckpt]
    paper = [sys.executable, str(Path(__file__).resolve()), "--worker", "paper", "--data", str(data),
             *model_args, "--class-batch", str(args.class_batch), "--steps", str(args.steps),
             "--eps", repr(args.eps), "--seed", str(args.seed)]

    def ours(*extra: str) -> list[str]:
        return [sys.executable, "-m", "rb_crossclass", "score", *model_args, "--dataset", f"npz:{data}",
                "--dataset-name", args.dataset_name, "--eps", repr(args.eps), "--steps", str(args.steps),
                "--seed", str(args.seed), "--device", "cpu", "--no-progress", *extra]

    commands = {"paper": paper, "ours": ours(), "ours_bf16": ours("--bf16")}
    if args.headline_compile:
        commands["ours_compile"] = ours("--compile")
    runs: dict[str, list[dict]] = {name: [] for name in commands}
    for r in range(args.repeats):
        for name, cmd in commands.items():
            out = work / f"{name}_{threads}_{r}"
            res = run_process(cmd + ([] if name == "paper" else ["--out", str(out)]), threads)
            if name == "paper":
                res["cas"] = json.loads(res.pop("stdout").strip().splitlines()[-1])["cas"]
            else:
                res.pop("stdout")
                res["cas"] = json.loads((out / "crossclass.json").read_text())["cas"]
            runs[name].append(res)
            print(f"  [{threads} thr] {name:13s} {res['wall_s']:7.1f} s wall {res['cpu_s']:7.1f} s CPU "
                  f"CAS {res['cas']:.3f}", flush=True)
    summary = {name: {"wall_s": min(r["wall_s"] for r in rs), "cpu_s": min(r["cpu_s"] for r in rs),
                      "cas": rs[0]["cas"], "runs": rs} for name, rs in runs.items()}
    for name in commands:
        if name != "paper":
            summary[name]["speedup_wall"] = summary["paper"]["wall_s"] / summary[name]["wall_s"]
            summary[name]["speedup_cpu"] = summary["paper"]["cpu_s"] / summary[name]["cpu_s"]
    return summary


def paper_worker(args) -> int:
    """``--worker paper``: the paper's algorithm as a whole process; prints one JSON line."""
    model = load_model(args)
    x, y = load_dataset(f"npz:{args.data}", "test", dataset_name=args.dataset_name)
    res = reference_cas(model, x, y, eps=args.eps, steps=args.steps, class_batch=args.class_batch,
                        seed=args.seed)
    print(json.dumps({"cas": res.cas, "n_used": res.n_used}))
    return 0


# --------------------------------------------------------------------------- part 2: variants
def attack_step(model, x: torch.Tensor, y: torch.Tensor, autocast: bool) -> torch.Tensor:
    """One step of the scorer's PGD (rb_crossclass.attacks.pgd): input-only gradient of the summed CE."""
    delta = torch.zeros_like(x).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        logits = model(x + delta)
    loss = F.cross_entropy(logits.float(), y, reduction="none").sum()
    (grad,) = torch.autograd.grad(loss, delta)
    return grad


class Variant:
    """A way to run one PGD step over ``images`` (in batches of ``batch``)."""

    def __init__(self, name: str, what: str, model, batch: int, *, paper: bool = False,
                 channels_last: bool = False, fold: bool = False, autocast: bool = False,
                 compile: bool = False, probe: torch.Tensor | None = None,
                 forward_only: bool = False) -> None:
        self.name, self.what, self.batch, self.paper = name, what, batch, paper
        self.forward_only = forward_only
        self.autocast, self.channels_last = autocast, channels_last
        model = copy.deepcopy(model).eval()
        for p in model.parameters():
            p.requires_grad_(paper)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        if fold:  # what the scorer does by default: a copy with the batch norms folded (checked)
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            model, self.folded = fold_batch_norms(model, probe.contiguous(memory_format=fmt))
        self.model = torch.compile(model, dynamic=False) if compile else model
        self.compile_s: float | None = None
        self.compile = compile

    def step(self, x: torch.Tensor, y: torch.Tensor, eps: float) -> None:
        for s in range(0, len(y), self.batch):
            xb, yb = x[s:s + self.batch], y[s:s + self.batch]
            if self.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            if self.paper:
                reference_pgd(self.model, xb, yb, eps=eps, steps=1, step=eps / 4, random_start=False)
            elif self.forward_only:
                with torch.no_grad():
                    self.model.forward_with_features(xb)
            else:
                attack_step(self.model, xb, yb, self.autocast)

    def warm_up(self, x: torch.Tensor, y: torch.Tensor, eps: float) -> None:
        t0 = time.perf_counter()
        self.step(x[:self.batch], y[:self.batch], eps)
        if self.compile:
            self.compile_s = time.perf_counter() - t0


def variants_for(model, probe: torch.Tensor) -> list[Variant]:
    b = CPU_BATCH_SIZE
    dflt = dict(channels_last=True, fold=True, probe=probe)
    return [
        Variant("paper", "the paper's step: NCHW, batch 100, loss.backward() fills parameter gradients",
                model, 100, paper=True),
        Variant("input_grads", "input-only gradients (NCHW, batch 100)", model, 100),
        Variant("channels_last", "+ channels_last (batch 100)", model, 100, channels_last=True),
        Variant("batch_64", f"+ batch {b}", model, b, channels_last=True),
        Variant("default", "+ batch norms folded = the default fp32 path", model, b, **dflt),
        Variant("batch_256", "the default path with batch 256 (the old default batch)", model, 256, **dflt),
        Variant("compile", "the default path + torch.compile (--compile)", model, b, compile=True, **dflt),
        Variant("bf16", "the default path + bf16 autocast (--bf16)", model, b, autocast=True, **dflt),
        Variant("bf16_compile", "bf16 + torch.compile (--bf16 --compile)", model, b, autocast=True,
                compile=True, **dflt),
        Variant("clean_forward", "one no-grad forward of the default path (the clean pass)", model, b,
                forward_only=True, **dflt),
    ]


def measure_variants(args, model, x: torch.Tensor, y: torch.Tensor, threads: int) -> dict:
    import torch._dynamo

    torch._dynamo.reset()
    clock = time.process_time if args.cpu_time and threads == 1 else time.perf_counter
    variants = variants_for(model, x[:16])
    for v in variants:
        v.warm_up(x, y, args.eps)
        if v.compile_s is not None:
            print(f"    compiled {v.name}: {v.compile_s:.1f} s", flush=True)
    times: dict[str, list[float]] = {v.name: [] for v in variants}
    n = len(y)
    for _ in range(args.rounds):
        for v in variants:
            c0 = clock()
            v.step(x, y, args.eps)
            dt = clock() - c0
            times[v.name].append(dt * 100 / n)
    paper = statistics.median(times["paper"])
    out: dict = {}
    for v in variants:
        med = statistics.median(times[v.name])
        out[v.name] = {"what": v.what, "batch": v.batch, "s_per_step_per_100": med, "clock": clock.__name__,
                       "rounds": times[v.name], "vs_paper": paper / med, "compile_s": v.compile_s}
        print(f"    {v.name:14s} {med:7.3f} s/step/100 img  {paper / med:5.2f}x  {v.what}", flush=True)
    fwd, step = out["clean_forward"]["s_per_step_per_100"], out["default"]["s_per_step_per_100"]
    out["clean_forward"]["share_of_default_pass"] = fwd / (args.steps * step + 2 * fwd)
    print(f"    the clean forward is {out['clean_forward']['share_of_default_pass']:.1%} of a default PGD-"
          f"{args.steps} pass: the most that fusing it could save (and only without a random start)",
          flush=True)
    return out


def profile_default(args, model, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Share of convolution forward / input-backward / everything else in the default step."""
    from torch.profiler import ProfilerActivity, profile

    v = Variant("default", "", model, CPU_BATCH_SIZE, channels_last=True, fold=True, probe=x[:16])
    v.warm_up(x, y, args.eps)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        v.step(x, y, args.eps)
    self_us = {e.key: e.self_cpu_time_total for e in prof.key_averages()}
    total = sum(self_us.values())
    conv_fwd = self_us.get("aten::mkldnn_convolution", 0) + self_us.get("aten::convolution", 0)
    conv_bwd = self_us.get("aten::convolution_backward", 0)
    rest = total - conv_fwd - conv_bwd
    top = sorted(self_us.items(), key=lambda kv: -kv[1])[:8]
    return {"conv_forward": conv_fwd / total, "conv_input_backward": conv_bwd / total,
            "everything_else": rest / total,
            "top_ops": [{"op": k, "share": us / total} for k, us in top]}


def compile_break_even(variants: dict, steps: int) -> dict:
    out = {}
    for base, comp in (("default", "compile"), ("bf16", "bf16_compile")):
        per_step = variants[base]["s_per_step_per_100"] - variants[comp]["s_per_step_per_100"]
        save_per_img = steps * per_step / 100
        cost = variants[comp]["compile_s"] or 0.0
        out[comp] = {
            "compile_s": cost, "saving_s_per_image": save_per_img,
            "break_even_images": cost / save_per_img if save_per_img > 0 else None,
            "net_saving_s": {str(n): n * save_per_img - cost for n in (1000, 10000)},
            "share_of_pass_saved": {
                str(n): (n * save_per_img - cost) / (n * steps * variants[base]["s_per_step_per_100"] / 100)
                for n in (1000, 10000)},
        }
    return out


# --------------------------------------------------------------------------- part 3: exactness
def exactness(args, model, x: torch.Tensor, y: torch.Tensor) -> dict:
    ours = score_model(model, x, y, attack=PGDConfig(eps=args.eps, steps=args.steps), seed=args.seed,
                       progress=False, keep_adversarial=True)
    per_class = int(torch.bincount(y).min())
    ref = reference_cas(model, x, y, eps=args.eps, class_batch=per_class, x_adv=ours.x_adv)
    mine = torch.tensor([[float("nan") if v is None else v for v in r] for r in ours.matrix])
    gap = (mine - ref.matrix).abs().nan_to_num(0).max().item()
    ok = abs(ours.cas - ref.cas) <= 1e-5 and gap <= 1e-5
    print(f"  same examples: ours CAS {ours.cas:.6f} (default path: {ours.compute}), paper's algorithm "
          f"{ref.cas:.6f}, max |dC| {gap:.2e} -> {'IDENTICAL' if ok else 'MISMATCH'}", flush=True)
    return {"images": len(y), "ours_cas": ours.cas, "paper_cas": ref.cas, "max_abs_dC": gap,
            "identical": ok, "compute": ours.compute}


# --------------------------------------------------------------------------- main
def parse_args() -> argparse.Namespace:
    shared = shared_data_dir()
    train_npz = shared / "cifar10_partial" / "cifar10_train_prefix.npz" if shared else None
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--checkpoint", default=None,
                    help="default: pyautoattack's model_test.pt for its ResNet18")
    ap.add_argument("--dataset", default=f"npz:{train_npz}" if train_npz else "cifar10")
    ap.add_argument("--dataset-name", default="cifar10")
    ap.add_argument("--per-class", type=int, default=100, help="images per class (multiple of --class-batch)")
    ap.add_argument("--class-batch", type=int, default=100, help="the paper's per-class batch (paper: 100)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--eps", type=float, default=8 / 255)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", default="1,all", help="comma-separated thread counts; 'all' = every CPU")
    ap.add_argument("--repeats", type=int, default=1, help="whole-process runs of each command")
    ap.add_argument("--headline-compile", action="store_true",
                    help="also time `score --compile` as a process")
    ap.add_argument("--variant-images", type=int, default=200, help="images of the per-step variant timings")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the variant timings")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time the 1-thread variants by process CPU time (robust to other processes' load)")
    ap.add_argument("--check-per-class", type=int, default=10, help="images per class of the exactness check")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: headline,variants,exactness")
    ap.add_argument("--out", default=None,
                    help="JSON path (default benchmarks/results/bench_crossclass_<date>.json)")
    ap.add_argument("--worker", choices=["paper"], help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.per_class % args.class_batch:
        ap.error("--per-class must be a multiple of --class-batch (so both use the same images)")
    return args


def main() -> int:
    args = parse_args()
    if args.worker == "paper":
        torch.set_num_threads(cpu_threads())
        return paper_worker(args)
    skip = set(filter(None, args.skip.split(",")))
    thread_list = [cpu_threads({}) if t == "all" else int(t) for t in args.threads.split(",")]
    out_path = Path(args.out) if args.out else (
        ROOT / "benchmarks" / "results" / f"bench_crossclass_{datetime.date.today().isoformat()}.json")
    model = load_model(args)
    x_all, y_all = load_dataset(args.dataset, "test", dataset_name=args.dataset_name)
    x, y = select_per_class(x_all, y_all, args.per_class, model.num_classes)
    print(f"model {args.model}, {len(y)} images ({args.per_class}/class) of {args.dataset}, PGD-{args.steps} "
          f"eps={args.eps:.4f}, threads {thread_list}, load average {os.getloadavg()}", flush=True)
    record: dict = {
        "benchmark": "cross-class scoring (CAS) vs the paper's algorithm", "model": args.model,
        "dataset": args.dataset, "images": len(y), "per_class": args.per_class,
        "class_batch": args.class_batch, "steps": args.steps, "eps": args.eps, "seed": args.seed,
        "default_batch": CPU_BATCH_SIZE, "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "torch_threads_all": cpu_threads({})},
        "versions": package_versions(), "load_average_start": os.getloadavg(), "by_threads": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "images.npz"
        write_npz(data, x, y)
        for i, threads in enumerate(thread_list):
            torch.set_num_threads(threads)
            part: dict = {"load_average_start": os.getloadavg()}
            print(f"== {threads} thread(s)", flush=True)
            if "variants" not in skip:
                print("  variants (in-process, interleaved):", flush=True)
                xv, yv = x[:args.variant_images], y[:args.variant_images]
                part["variants"] = measure_variants(args, model, xv, yv, threads)
                part["compile_break_even"] = compile_break_even(part["variants"], args.steps)
                part["profile_default_step"] = profile_default(args, model, xv[:CPU_BATCH_SIZE * 2],
                                                               yv[:CPU_BATCH_SIZE * 2])
                prof = part["profile_default_step"]
                paper = part["variants"]["paper"]["s_per_step_per_100"]
                conv_only = part["variants"]["default"]["s_per_step_per_100"] * (
                    prof["conv_forward"] + prof["conv_input_backward"])
                part["fp32_ceiling_vs_paper"] = paper / conv_only
                print(f"  default step: convolutions forward {prof['conv_forward']:.0%}, input-backward "
                      f"{prof['conv_input_backward']:.0%}, rest {prof['everything_else']:.0%}; with the rest "
                      f"free a step would be {paper / conv_only:.2f}x the paper's", flush=True)
            if "exactness" not in skip and i == 0:
                xc, yc = select_per_class(x, y, args.check_per_class, model.num_classes)
                record["exactness"] = exactness(args, model, xc, yc)
            if "headline" not in skip:
                print("  headline (whole processes):", flush=True)
                part["headline"] = headline(args, data, threads, work)
                for name, h in part["headline"].items():
                    if name != "paper":
                        print(f"  {name:13s} {h['speedup_wall']:.2f}x the paper's algorithm (wall), "
                              f"{h['speedup_cpu']:.2f}x (CPU)", flush=True)
            part["load_average_end"] = os.getloadavg()
            record["by_threads"][str(threads)] = part
            with contextlib.suppress(OSError):
                atomic_write_json(out_path, record)  # partial results survive an interruption
    record["load_average_end"] = os.getloadavg()
    atomic_write_json(out_path, record)
    print(f"wrote {out_path}")
    return 0 if record.get("exactness", {}).get("identical", True) else 1


if __name__ == "__main__":
    sys.exit(main())
