"""``rb-crossclass zoo list|show|card``: our model zoo entries."""

from __future__ import annotations

import argparse
import json
import shutil

from ..core import KNOWN_DATASETS, THREAT_MODELS, format_number
from .common import eps_string_arg, model_id_arg, output_file_arg

DESCRIPTION = """Our model zoo: model_zoo/<dataset>/<threat_model>/<Name>.yaml, one entry per
model (architecture as a model source, recipe, checkpoint with sha256, evaluated card). Every
entry loads as the model source zoo:<Name> and, after rb_crossclass.zoo.register_timm(), through
robustbench.utils.load_model('<Name>', dataset=..., threat_model=...)."""


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
    q = sub.add_parser("list", parents=[common, board],
                       help="list entries with their card's accuracies and CAS")
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
    q = sub.add_parser("attach-card", parents=[common, board], help="store an evaluated card "
                       "(rb-crossclass evaluate --model zoo:NAME) as the entry's card, with its "
                       "training block")
    q.add_argument("name")
    q.add_argument("--card", required=True, metavar="FILE", help="the card written by evaluate")
    q.add_argument("--footnote", default=None)
    q.add_argument("--title", default=None, help="the card's 'name' field")
    q.add_argument("--architecture", default=None)
    q.add_argument("--venue", default=None)
    q.add_argument("--authors", default=None)
    q.add_argument("--link", default=None, help="an absolute http(s) address")
    p.set_defaults(func=run)


def _fmt(v, digits: int = 2) -> str:
    return format_number(v, f".{digits}f" if isinstance(v, float) else "")


def run(args: argparse.Namespace) -> int:
    from .. import zoo

    if args.zoo_command == "list":
        entries = zoo.list_entries(args.root, args.dataset, args.threat_model)
        rows = [{**e.summary(), **zoo.card_numbers(e)} for e in entries]
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        header = ("name", "dataset", "threat", "architecture", "recipe", "clean", "AA", "CAS", "FSI", "n")
        table = [header] + [(r["name"], r["dataset"], r["threat_model"], r["architecture"],
                             str(r["recipe"]), _fmt(r.get("clean_acc")), _fmt(r.get("autoattack_acc")),
                             _fmt(r.get("cas")), _fmt(r.get("fsi"), 3), _fmt(r.get("n_examples")))
                            for r in rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        for row in table:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        print(f"{len(rows)} entries in {zoo.zoo_root(args.root)}")
        return 0
    if args.zoo_command == "add":
        entry = zoo.add_entry(args.run, args.name, root=args.root, dataset=args.dataset,
                              threat_model=args.threat_model, checkpoint=args.which, eps=args.eps)
        size = entry.checkpoint_path.stat().st_size / 1e6
        print(f"added {entry.name}: {entry.yaml_path} ({entry.architecture}, {entry.recipe.get('name')}), "
              f"weights {entry.checkpoint_path.name} {size:.2f} MB sha256 {entry.sha256[:16]}...\n"
              f"next: rb-crossclass evaluate --model zoo:{entry.name} ... then zoo attach-card")
        return 0
    if args.zoo_command == "attach-card":
        fields = {k: v for k, v in (("name", args.title), ("architecture", args.architecture),
                                    ("venue", args.venue), ("authors", args.authors),
                                    ("link", args.link)) if v is not None}
        path = zoo.attach_card(args.name, args.card, root=args.root, dataset=args.dataset,
                               threat_model=args.threat_model, footnote=args.footnote, fields=fields)
        entry = zoo.find_entry(args.name, args.root, args.dataset, args.threat_model)
        numbers = zoo.card_numbers(entry)
        changed = ", ".join(["training block (from the YAML)", *(f"{k} (--{k.replace('name', 'title')})"
                                                                 for k in fields),
                             *(["footnote"] if args.footnote is not None else [])])
        print(f"attached {args.card} to zoo entry {args.name}: clean {_fmt(numbers.get('clean_acc'))} %, "
              f"AutoAttack {_fmt(numbers.get('autoattack_acc'))} %, CAS {_fmt(numbers.get('cas'))}, "
              f"n={_fmt(numbers.get('n_examples'))}\nadded: {changed}\nwrote {path}\n"
              f"next: rb-crossclass zoo show {args.name}; rebuild boards with rb-crossclass leaderboard")
        return 0
    entry = zoo.find_entry(args.name, args.root, args.dataset, args.threat_model)
    if args.zoo_command == "show":
        info = entry.summary()
        info["recipe"] = entry.recipe
        if not args.no_verify:
            path = zoo.checkpoint_file(entry)
            info["checkpoint_verified"] = f"sha256 ok ({path.stat().st_size / 1e6:.2f} MB)"
        info.update(zoo.card_numbers(entry))
        width = max(map(len, info))
        for k, v in info.items():
            text = (json.dumps(v) if isinstance(v, (dict, list))
                    else f"{v:.4g}" if isinstance(v, float) else v)
            print(f"{k.ljust(width)}  {text}")
        return 0
    card = zoo.read_entry_card(entry)
    if args.out:
        shutil.copyfile(entry.card_path, args.out)
        print(f"wrote {args.out}")
    else:
        print(json.dumps(card, indent=2, ensure_ascii=False))
    return 0
