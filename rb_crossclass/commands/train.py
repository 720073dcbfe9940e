"""``rb-crossclass train``: adversarial training from a YAML config or a packaged preset."""

from __future__ import annotations

import argparse
import logging
import os

from .common import output_dir_arg


def register(subparsers, summary: str) -> None:
    from ..train import list_presets, presets_needing_shared_data

    shared = presets_needing_shared_data()
    p = subparsers.add_parser(
        "train", help=summary,
        description=summary + ". Writes config.yaml, metrics.jsonl, curves.png, checkpoints and a "
        "card into --out. Under torchrun the run is distributed (DDP). Presets: "
        + ", ".join(list_presets()) + ". " + ", ".join(shared) + " train on the partial CIFAR-10 of "
        "the project's shared data folder (../shared/data beside a checkout, or $RB_CROSSCLASS_SHARED): "
        "outside a checkout set that variable or --set data.train=... --set data.eval=...; the others "
        "read cifar10 from --data-dir (downloaded when the network allows).",
    )
    p.add_argument("--config", required=True, metavar="FILE|PRESET",
                   help="a YAML file, or the name of a packaged preset (e.g. cpu_small_pgd_at)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (dotted, value parsed as YAML), e.g. optim.epochs=5 "
                   "or recipe.params.beta=3; repeatable")
    p.add_argument("--data-dir", metavar="DIR", default=None,
                   help="folder holding the dataset files (cifar10/cifar100/mnist; sets data.data_dir; "
                   "default ./data or $RB_CROSSCLASS_DATA)")
    p.add_argument("--out", type=output_dir_arg, metavar="RUN_DIR",
                   help="run folder (required unless --print-config)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/last")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..core import RBCrossclassError, check_output_dir
    from ..train import config_to_yaml, load_config, train, train_summary

    cfg = load_config(args.config, args.overrides, data_dir=args.data_dir)
    if args.print_config:
        print(config_to_yaml(cfg), end="")
        return 0
    if not args.out:
        raise RBCrossclassError("--out RUN_DIR is required")
    check_output_dir(args.out)  # before any data is read or a model is built
    logging.getLogger("rb_crossclass").setLevel(logging.INFO)
    result = train(cfg, args.out, resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:  # train() has already closed the process group
        print(train_summary(cfg, result, args.out))
    return 0
