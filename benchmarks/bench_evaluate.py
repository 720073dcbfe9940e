"""Our ``evaluate`` (AutoAttack + cross-class scores + card) vs a bare pyautoattack run.

Same model, same points, same settings, one run each by default (after a warm-up pass); prints
wall and CPU (process) times and the ratios ours / bare (goal: <= 1.05), and checks that both give
the same robust flags. On a shared CPU the wall ratio is noisy: ``--repeat K`` alternates the two
K times and reports the fastest of each; the CPU-time ratio is the steadier number.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_evaluate.py                # tiny CNN, CPU
    .venv/bin/python benchmarks/bench_evaluate.py --model py:pyautoattack.examples.resnet:ResNet18 \\
        --checkpoint "$AA_DIR/examples/model_test.pt" --n 1000 --eps 8/255 --version standard --device cuda
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from rb_crossclass.cards import write_card
from rb_crossclass.core.threat import parse_eps
from rb_crossclass.crossclass import ComputeSettings
from rb_crossclass.data import CIFAR10_CLASSES, load_dataset, shared_data_dir
from rb_crossclass.evaluate import AutoAttackConfig, evaluate_model, result_card
from rb_crossclass.models import create_model_source, wrap_model


class TinyCNN(torch.nn.Module):
    """[B,3,32,32] in [0,1] -> [B,10]; two convs and a linear head."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, width, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(width, 2 * width, 3, padding=1), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
        )
        self.fc = torch.nn.Linear(2 * width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))


def tiny_trained(train_npz: Path | None, epochs: int = 3) -> torch.nn.Module:
    # The same net and training as the ``trained`` fixture of tests/test_evaluate.py (TinyCNN is
    # tests/conftest.py's TinyConvNet); kept here so this script needs neither pytest nor tests/.
    torch.manual_seed(0)
    net = TinyCNN()
    if train_npz is not None and train_npz.is_file():
        x, y = load_dataset(f"npz:{train_npz}", "train")
        opt = torch.optim.Adam(net.parameters(), 1e-2)
        g = torch.Generator().manual_seed(0)
        for _ in range(epochs):
            perm = torch.randperm(len(y), generator=g)
            for i in range(0, len(y), 128):
                b = perm[i:i + 128]
                loss = torch.nn.functional.cross_entropy(net(x[b]), y[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
    return wrap_model(net.eval()).eval()


def main() -> None:
    shared = shared_data_dir()
    default_test = shared / "cifar10_partial" / "cifar10_test_first1017.npz" if shared else None
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny", help="'tiny' (trained here for ~3 s) or a model source")
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--dataset", default=f"npz:{default_test}" if default_test else "cifar10")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--eps", default="2/255")
    p.add_argument("--norm", default="Linf")
    p.add_argument("--version", default="custom")
    p.add_argument("--attacks", nargs="+", default=["apgd-ce", "apgd-t"])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeat", type=int, default=1, help="alternate bare/ours K times, keep the fastest")
    args = p.parse_args()

    device = torch.device(args.device)
    if args.model == "tiny":
        train = shared / "cifar10_partial" / "cifar10_train_prefix.npz" if shared else None
        model = tiny_trained(train)
    else:
        model = create_model_source(args.model, checkpoint=args.checkpoint)
    model = model.to(device).eval()
    x, y = load_dataset(args.dataset, "test", n_examples=args.n)
    x = x.contiguous()
    eps = parse_eps(args.eps)
    attacks = tuple(args.attacks) if args.version == "custom" else None
    cfg = AutoAttackConfig(norm=args.norm, eps=eps, version=args.version, attacks=attacks,
                     batch_size=args.batch_size, seed=0)

    with torch.no_grad():  # warm-up: allocator, kernels
        model(x[: args.batch_size].to(device))

    from pyautoattack import AutoAttack

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def run_bare():
        aa = AutoAttack(model, norm=args.norm, eps=eps, version=args.version,
                        attacks=list(attacks) if attacks else None, seed=0, device=device)
        aa.verbose = False
        x_adv, _ = aa.run_standard_evaluation(x, y, batch_size=args.batch_size)
        sync()
        return x_adv

    def run_ours():
        result = evaluate_model(model, x, y, cfg, compute=ComputeSettings(device=device),
                                class_names=CIFAR10_CLASSES,
                                model_name=args.model, dataset="cifar10", progress=False)
        card = result_card(result, name=f"bench {args.model}")
        with tempfile.TemporaryDirectory() as d:
            write_card(card, Path(d) / "card.json")
        sync()
        return result

    def timed(fn):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        return out, time.perf_counter() - w, time.process_time() - c

    bare_w, bare_c, ours_w, ours_c = [], [], [], []
    for _ in range(args.repeat):
        x_adv, w, c = timed(run_bare)
        bare_w.append(w)
        bare_c.append(c)
        result, w, c = timed(run_ours)
        ours_w.append(w)
        ours_c.append(c)
    with torch.no_grad():
        bare_flags = torch.cat([model(x_adv[i:i + args.batch_size].to(device)).argmax(1).cpu()
                                for i in range(0, len(y), args.batch_size)]).eq(y)
    bare, ours = min(bare_w), min(ours_w)
    same = result.robust_flag_tensor().tolist() == bare_flags.tolist()
    print(f"model {args.model}, {args.n} points, {args.version} {cfg.norm} eps {args.eps}, "
          f"batch {args.batch_size}, device {device}, threads {torch.get_num_threads()}")
    print(f"robust accuracy: ours {100 * result.robust_accuracy:.2f}%  bare "
          f"{100 * float(bare_flags.float().mean()):.2f}%  (same flags: {same})")
    cas_s = result.seconds_by_stage.get("cas", 0.0)
    print(f"bare pyautoattack       : {bare:8.2f} s wall  {min(bare_c):8.2f} s CPU")
    print(f"ours (AA + CAS + card)  : {ours:8.2f} s wall  {min(ours_c):8.2f} s CPU  (CAS {cas_s:.2f} s)")
    print(f"ratio ours / bare       : {ours / bare:8.3f} wall  {min(ours_c) / min(bare_c):8.3f} CPU  "
          f"(goal <= 1.05; best of {args.repeat})")


if __name__ == "__main__":
    main()
