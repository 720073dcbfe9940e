"""``rb-crossclass zoo list|show|card|add|attach-card``: our model zoo entries."""

from __future__ import annotations

import argparse
import json
import shutil

from ..core import KNOWN_DATASETS, THREAT_MODELS
from .common import eps_string_arg, model_id_arg, output_file_arg

DESCRIPTION = """Our model zoo: model_zoo/<dataset>/<threat_model>/<Name>.yaml, one entry per model,
loadable as the model source zoo:<Name> and through robustbench.utils.load_model (docs/commands/zoo.md)."""


def register(subparsers, summary: str) -> None:
    p = subparsers.add_parser("zoo", help=summary, description=DESCRIPTION)
    root_help = "zoo folder (default: $RB_CROSSCLASS_ZOO, ./model_zoo, or the zoo shipped with the package)"
    p.add_argument("--root", default=None, help=root_help)
    common = argparse.ArgumentParser(add_help=False)  # --root also after the action
    common.add_argument("--root", default=argparse.SUPPRESS, help=root_help)
    board = argparse.ArgumentParser(add_help=False)
    board.add_argument("--dataset", default=None)
    board.add_argument("--threat-model", default=None)
    sub = p.add_subparsers(dest="zoo_command", metavar="ACTION", required=True)
    q = sub.add_parser("list", parents=[common, board], help="entries with their card's accuracies and CAS")
    q.add_argument("--json", action="store_true", help="print JSON instead of a table")
    q = sub.add_parser("show", parents=[common, board],
                       help="one entry: YAML fields, checkpoint check, card summary")
    q.add_argument("name")
    q.add_argument("--no-verify", action="store_true", help="skip the sha256 check of the checkpoint")
    q = sub.add_parser("card", parents=[common, board], help="print an entry's card (or copy it with --out)")
    q.add_argument("name")
    q.add_argument("--out", type=output_file_arg, default=None, metavar="FILE", help="copy the card to FILE")
    q = sub.add_parser("add", parents=[common], help="make an entry from a training run (copies the "
                       "weights, writes the YAML with their sha256)")
    q.add_argument("--run", required=True, metavar="RUN_DIR", help="an `rb-crossclass train --out` folder")
    q.add_argument("--name", type=model_id_arg, required=True,
                   help="model ID (RobustBench style, e.g. Me2025Title_R18)")
    q.add_argument("--which", default="best", choices=["best", "last"],
                   help="which checkpoint of the run: best (by held-out robust accuracy, default) or last")
    q.add_argument("--dataset", default="cifar10", choices=KNOWN_DATASETS)
    q.add_argument("--threat-model", default="Linf", choices=THREAT_MODELS)
    q.add_argument("--eps", type=eps_string_arg, default="8/255")
    q = sub.add_parser("attach-card", parents=[common, board], help="store an evaluated card (rb-crossclass "
                       "evaluate --model zoo:NAME) as the entry's card, with its training block")
    q.add_argument("name")
    q.add_argument("--card", required=True, metavar="FILE", help="the card written by evaluate")
    q.add_argument("--footnote", default=None)
    q.add_argument("--title", default=None, help="the card's 'name' field")
    for field in ("architecture", "venue", "authors"):
        q.add_argument(f"--{field}", default=None)
    q.add_argument("--link", default=None, help="an absolute http(s) address")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import zoo

    where = {"root": args.root, "dataset": args.dataset, "threat_model": args.threat_model}
    if args.zoo_command == "list":
        rows = zoo.list_rows(**where)
        print(json.dumps(rows, indent=2) if args.json else zoo.list_table(rows, args.root))
    elif args.zoo_command == "add":
        entry = zoo.add_entry(args.run, args.name, checkpoint=args.which, eps=args.eps, **where)
        print(zoo.add_summary(entry))
    elif args.zoo_command == "attach-card":
        given = {"name": args.title, **{k: getattr(args, k) for k in ("architecture", "venue", "authors",
                                                                     "link")}}
        fields = {k: v for k, v in given.items() if v is not None}
        path = zoo.attach_card(args.name, args.card, footnote=args.footnote, fields=fields, **where)
        print(zoo.attach_summary(args.name, args.card, path, fields=fields, footnote=args.footnote, **where))
    elif args.zoo_command == "show":
        print(zoo.show_text(zoo.find_entry(args.name, **where), verify=not args.no_verify))
    else:
        entry = zoo.find_entry(args.name, **where)
        card = zoo.read_entry_card(entry)  # validated before it is copied
        if args.out:
            shutil.copyfile(entry.card_path, args.out)
        print(f"wrote {args.out}" if args.out else json.dumps(card, indent=2, ensure_ascii=False))
    return 0
