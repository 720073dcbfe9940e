"""One epoch of PGD-10 adversarial training: our loop vs the classic research-code loop.

Same model (copies of one initialisation), same images, same batches. Our loop is
``create_recipe("pgd_at")`` + SGD with the model and batches in channels_last memory format (what
``runtime.channels_last: true`` does): the attack takes gradients with respect to the input only
(``torch.autograd.grad``). The classic loop (as in the original PGD-AT / robust-overfitting code)
calls ``loss.backward()`` at every attack step, which also computes and accumulates gradients of
every parameter, then zeroes them before the training step, in the default NCHW format. To
separate the two effects, our loop in NCHW and the classic loop in channels_last are timed too.
Batches of all loops are interleaved so that a change in machine load hits them alike.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_train.py --n 512 --threads 1

Prints images/s of each loop and the ratio (goal >= 1.5x on CPU); ``--out FILE`` also writes them
as JSON. The committed ``benchmarks/results/bench_train.json`` is the README's measurement: it is
rewritten only when named with ``--out`` (and ``--force``, since it exists).
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from rb_crossclass.core.io import atomic_write_json
from rb_crossclass.data import load_dataset, shared_data_dir, train_loader
from rb_crossclass.models import SourceOptions, create_model_source
from rb_crossclass.recipes import create_recipe

EPS, STEP, STEPS = 8 / 255, 2 / 255, 10


def classic_step(model, opt, x, y) -> float:
    """The research-code pattern: attack gradients through ``loss.backward()`` on all parameters."""
    delta = torch.zeros_like(x).uniform_(-EPS, EPS)
    delta = ((x + delta).clamp(0, 1) - x).requires_grad_(True)
    for _ in range(STEPS):
        loss = F.cross_entropy(model(x + delta), y)
        loss.backward()
        grad = delta.grad.detach()
        delta.data = (delta + STEP * grad.sign()).clamp(-EPS, EPS)
        delta.data = (x + delta.data).clamp(0, 1) - x
        delta.grad.zero_()
    loss = F.cross_entropy(model(x + delta.detach()), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def ours_step(recipe, model, opt, x, y) -> float:
    loss = recipe.loss(model, x, y).total
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="timm:resnet10t")
    ap.add_argument("--extra", default='{"channels": [16, 32, 64, 128], "stem_width": 16}',
                    help="JSON keyword arguments for timm.create_model")
    ap.add_argument("--n", type=int, default=512, help="training images (one epoch)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, metavar="FILE", help="also write the result as JSON")
    ap.add_argument("--force", action="store_true", help="replace --out when it exists")
    args = ap.parse_args(argv)
    if args.out and Path(args.out).exists() and not args.force:
        ap.error(f"--out {args.out} exists (the committed result?); add --force to replace it")
    torch.set_num_threads(args.threads)
    shared = shared_data_dir()
    if shared is None:
        print("needs ../shared/data (partial CIFAR-10)", file=sys.stderr)
        return 2
    x, y = load_dataset(f"npz:{shared}/cifar10_partial/cifar10_train_prefix.npz", "train", args.n)
    torch.manual_seed(0)
    base = create_model_source(args.model, SourceOptions(extra=json.loads(args.extra))).train()
    recipe = create_recipe("pgd_at", eps=EPS, step_size=STEP, steps=STEPS)
    loader = train_loader(x, y, args.batch_size, seed=0)
    variants = {}
    for name, ours, cl in (("ours", True, True), ("ours_nchw", True, False), ("classic", False, False),
                           ("classic_channels_last", False, True)):
        model = copy.deepcopy(base)
        if cl:
            model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        variants[name] = {"model": model, "opt": opt, "ours": ours, "cl": cl, "seconds": 0.0}

    def step(v, xb, yb):
        if v["cl"]:
            xb = xb.contiguous(memory_format=torch.channels_last)
        if v["ours"]:
            return ours_step(recipe, v["model"], v["opt"], xb, yb)
        return classic_step(v["model"], v["opt"], xb, yb)

    # warm-up on copies (the first optimizer step imports lazily; oneDNN picks algorithms)
    xb, yb = next(iter(loader))
    for v in variants.values():
        w = dict(v, model=copy.deepcopy(v["model"]))
        w["opt"] = torch.optim.SGD(w["model"].parameters(), lr=0.0)
        step(w, xb[:16], yb[:16])
    n = 0
    for xb, yb in loader:
        for v in variants.values():
            t0 = time.perf_counter()
            step(v, xb, yb)
            v["seconds"] += time.perf_counter() - t0
        n += len(yb)
    rate = {k: n / v["seconds"] for k, v in variants.items()}
    result = {
        "benchmark": "one epoch PGD-10 AT (eps 8/255, step 2/255)", "model": args.model,
        "extra": json.loads(args.extra), "images": n, "batch_size": args.batch_size,
        "threads": args.threads, "images_per_s": rate,
        "speedup": rate["ours"] / rate["classic"],
        "speedup_input_grads_only_nchw": rate["ours_nchw"] / rate["classic"],
        "speedup_input_grads_only_channels_last": rate["ours"] / rate["classic_channels_last"],
        "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
    }
    if args.out:
        atomic_write_json(Path(args.out), result)
    for k, r in rate.items():
        print(f"{k:22s} {r:8.1f} images/s")
    print(f"speedup ours / classic: {result['speedup']:.2f}x (goal >= 1.5x); input-only gradients alone: "
          f"{result['speedup_input_grads_only_nchw']:.2f}x (NCHW), "
          f"{result['speedup_input_grads_only_channels_last']:.2f}x (channels_last)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
