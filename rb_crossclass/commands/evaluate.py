"""``rb-crossclass evaluate``: AutoAttack under RobustBench's protocol, CAS, and a model card.

Runs in one process or under ``torchrun --nproc_per_node R`` (each rank attacks a disjoint set of
batches; rank 0 writes the result, identical to a single-process run).
"""

from __future__ import annotations

import argparse

from ..evaluate import AA_ATTACKS, DEFAULT_BATCH_SIZE, VERSIONS
from .common import (
    add_data_args,
    add_device_args,
    add_model_args,
    add_threat_args,
    compute_settings,
    dataset_label,
    model_id_arg,
    model_spec,
    output_dir_arg,
    percent_arg,
    positive_int,
    resolve_eps,
    venue_arg,
)


def register(subparsers, summary: str) -> None:
    p = subparsers.add_parser(
        "evaluate", help=summary,
        description="Clean and AutoAttack robust accuracy under RobustBench's protocol (first N test "
        "points, inputs in [0,1], seed 0, version standard), the cross-class scores (CAS, matrix, "
        "FSI) under the paper's PGD-20 protocol and of AutoAttack's own adversarial examples, and a "
        "RobustBench-compatible card. "
        "Resumable with --state; shardable with torchrun.",
    )
    add_model_args(p)
    add_data_args(p)
    add_threat_args(p)
    add_device_args(p, batch_help=f"AutoAttack's batch (default {DEFAULT_BATCH_SIZE})",
                    bf16_help="run the cross-class scoring in bf16 (AutoAttack itself stays float32, "
                    "RobustBench's protocol); refused on hardware without native bf16")
    g = p.add_argument_group("AutoAttack")
    g.add_argument("--aa-version", dest="aa_version", default="standard", choices=VERSIONS,
                   help="AutoAttack version (default: standard, RobustBench's)")
    g.add_argument("--attacks", nargs="+", choices=AA_ATTACKS, metavar="ATTACK",
                   help=f"with --aa-version custom: attacks to run in order ({', '.join(AA_ATTACKS)})")
    g.add_argument("--state", metavar="DIR",
                   help="resume folder: progress is saved per attack and batch; rerun the same "
                   "command to continue after an interruption")
    g.add_argument("--aa-exact", action="store_true",
                   help="attack the model as it is, with bare pyautoattack's arithmetic (default: a "
                   "faster copy with frozen parameters, folded batch norms, channels_last where "
                   "it pays and chunked forwards; same function, other float rounding)")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")
    s = p.add_argument_group("cross-class scores")
    s.add_argument("--no-cas", action="store_true", help="skip the cross-class scores")
    s.add_argument("--no-pgd", action="store_true",
                   help="skip the paper's PGD-20 protocol (then the card has no cross_class block; "
                   "CAS on AutoAttack's examples stays in eval.json)")
    s.add_argument("--score-batch-size", type=positive_int, default=None,
                   help="batch size of the scoring passes")
    o = p.add_argument_group("output and card")
    o.add_argument("--out", type=output_dir_arg, required=True, metavar="DIR",
                   help="writes DIR/eval.json and DIR/<card-name>.json")
    o.add_argument("--card-name", type=model_id_arg, default=None,
                   help="the model ID: card file name inside --out (default: from the model source)")
    o.add_argument("--card-dataset", type=dataset_label, default=None,
                   help="dataset written in the card (default: the dataset name, or the npz file's stem); "
                   "a RobustBench dataset name also sets --dataset-name")
    o.add_argument("--official-cards", metavar="DIR",
                   help="RobustBench model_info folder: pre-fill the card from the official card")
    o.add_argument("--from-official", action="store_true",
                   help="download the official card of a robustbench: model from GitHub (online)")
    o.add_argument("--title", default=None, help="card 'name' (paper title; default: the card name)")
    o.add_argument("--link", default=None, help="card 'link': the paper's URL")
    o.add_argument("--authors", default=None, help="card 'authors', e.g. 'A. Author, B. Author'")
    o.add_argument("--venue", type=venue_arg, default=None,
                   help="card 'venue' as RobustBench writes it: 'Venue Year', e.g. 'ICML 2025'")
    o.add_argument("--reported", type=percent_arg, default=None, metavar="PERCENT",
                   help="card 'reported': the robust accuracy the authors report, e.g. 53.42")
    o.add_argument("--architecture", default=None,
                   help="card 'architecture', e.g. WideResNet-28-10 (default: from the model source)")
    o.add_argument("--footnote", default=None, help="card 'footnote'")
    o.add_argument("--additional-data", action="store_true", help="trained with extra data")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluate import AutoAttackConfig, evaluate_source, summary_table

    config = AutoAttackConfig(norm=args.threat_model, eps=resolve_eps(args), version=args.aa_version,
                              attacks=tuple(args.attacks) if args.attacks else None,
                              batch_size=args.batch_size or DEFAULT_BATCH_SIZE, seed=args.seed)
    descriptive = {k: getattr(args, k) for k in ("link", "authors", "venue", "reported", "footnote")
                   if getattr(args, k) is not None}
    if args.additional_data:
        descriptive["additional_data"] = True
    if args.architecture is not None:
        descriptive["architecture"] = args.architecture
    run = evaluate_source(
        model_spec(args), args.dataset, args.out, config, dataset_name=args.dataset_name,
        data_dir=args.data_dir, n_examples=args.n_examples,
        compute=compute_settings(args).replace(batch_size=args.score_batch_size), state_dir=args.state,
        aa_exact=args.aa_exact, cas=not args.no_cas, pgd=not args.no_pgd, progress=not args.no_progress,
        card_name=args.card_name, card_dataset=args.card_dataset, title=args.title, descriptive=descriptive,
        official_cards=args.official_cards, from_official=args.from_official)
    if run is not None:
        print(summary_table(run.result))
        print(f"wrote {run.eval_path} and {run.card_path}")
    return 0
