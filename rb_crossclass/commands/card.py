"""``rb-crossclass card validate|show|schema``: check and read model cards."""

from __future__ import annotations

import argparse
import json
import sys

from ..cards import card_schema, card_table, check_card_files, load_card, schema_path
from .common import model_id_arg, output_dir_arg, percent_arg, venue_arg


def register(subparsers, summary: str) -> None:
    p = subparsers.add_parser(
        "card", help=summary,
        description="Validate RobustBench-compatible model cards against the rb-crossclass card "
        "schema, show a card, or print the schema.",
    )
    sub = p.add_subparsers(dest="card_command", metavar="ACTION", required=True)
    v = sub.add_parser("validate", help="validate card files (folders are searched for *.json)",
                       description="Validate each card; every problem is printed with the file and "
                       "the field (JSON path). Exit status 1 when any card is invalid.")
    v.add_argument("files", nargs="+", metavar="FILE", help="card files or folders")
    v.add_argument("-q", "--quiet", action="store_true", help="print only invalid cards")
    v.set_defaults(func=run_validate)
    s = sub.add_parser("show", help="print a card as a readable table",
                       description="Print a card as a table: RobustBench fields, the cross-class scores "
                       "(CAS with its interval, matrix), then every block flattened into dotted keys "
                       "(cross_class.attack.eps, evaluation.seconds, ...) with numbers formatted.")
    s.add_argument("file", metavar="FILE")
    s.add_argument("--json", action="store_true", help="print the validated card as JSON instead")
    s.set_defaults(func=run_show)
    sc = sub.add_parser("schema", help="print the card JSON Schema (or its path)")
    sc.add_argument("--path", action="store_true", help="print only the schema file's path")
    sc.set_defaults(func=run_schema)
    e = sub.add_parser(
        "export-robustbench", help="write what a RobustBench pull request needs for a zoo entry",
        description="For zoo entry NAME write OUT/model_info/<dataset>/<threat_model>/<ID>.json (the card "
        "with RobustBench's keys only, venue as 'Venue Year', reported filled), "
        "OUT/models/<dataset>/<threat_model>/<ID>.pt (the weights as robustbench.utils.load_model reads "
        "them) and OUT/model_zoo_entry.py (the architecture and entry to paste into "
        "robustbench/model_zoo/<dataset>.py). The export checks that its checkpoint, loaded into its "
        "architecture the way robustbench does, gives the zoo model's logits.")
    e.add_argument("name", metavar="NAME", help="the zoo entry (rb-crossclass zoo list)")
    e.add_argument("--out", type=output_dir_arg, required=True, metavar="DIR")
    e.add_argument("--root", default=None, help="zoo folder (default: $RB_CROSSCLASS_ZOO, ./model_zoo, "
                   "or the zoo shipped with the package)")
    e.add_argument("--id", dest="rb_name", type=model_id_arg, default=None,
                   help="the model ID in RobustBench (default: the entry's name)")
    e.add_argument("--venue", type=venue_arg, default=None, help="'Venue Year', e.g. 'ICML 2025'")
    e.add_argument("--reported", type=percent_arg, default=None, metavar="PERCENT",
                   help="the robust accuracy the paper reports (default: the card's, else its AutoAttack)")
    e.add_argument("--link", default=None, help="the paper's URL")
    e.add_argument("--authors", default=None)
    e.add_argument("--title", default=None, help="the card's 'name' (the paper's title)")
    e.set_defaults(func=run_export)


def run_validate(args: argparse.Namespace) -> int:
    checked = check_card_files(args.files)
    for path, problems in checked:
        for problem in problems:
            print(f"INVALID {problem}")
        if not problems and not args.quiet:
            print(f"ok      {path}")
    n_bad = sum(1 for _, problems in checked if problems)
    print(f"{len(checked) - n_bad} of {len(checked)} cards valid", file=sys.stderr)
    return 1 if n_bad else 0


def run_show(args: argparse.Namespace) -> int:
    card = load_card(args.file)
    if args.json:
        print(json.dumps(card, indent=2, ensure_ascii=False))
    else:
        print(card_table(card))
    return 0


def run_export(args: argparse.Namespace) -> int:
    from ..zoo import export_robustbench

    res = export_robustbench(args.name, args.out, root=args.root, name=args.rb_name, venue=args.venue,
                             reported=args.reported, link=args.link, authors=args.authors, title=args.title)
    print(f"exported zoo entry {args.name} as RobustBench model {res.name} "
          f"(round trip through robustbench's loading: max |logit diff| {res.max_abs_logit_diff:.1g})")
    print(f"  card        {res.card}")
    print(f"  checkpoint  {res.checkpoint}")
    print(f"  entry       {res.entry}")
    print("next: upload the checkpoint, put its Google Drive id in the entry's 'gdrive_id', paste the "
          "entry into robustbench/model_zoo/, add the card to model_info/, open the pull request")
    return 0


def run_schema(args: argparse.Namespace) -> int:
    if args.path:
        print(schema_path())
    else:
        print(json.dumps(card_schema(), indent=2))
    return 0
