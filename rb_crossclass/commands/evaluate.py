"""``rb-crossclass evaluate``: AutoAttack under RobustBench's protocol, CAS, and a model card.

Runs in one process or under ``torchrun --nproc_per_node R`` (each rank attacks a disjoint set of
batches; rank 0 writes the result, identical to a single-process run).
"""

from __future__ import annotations

import argparse
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

from ..cards import CardError, load_card, official_card_path, parse_card, write_card
from ..core.datasets import KNOWN_DATASETS
from ..core.io import atomic_write_json
from ..core.names import model_id_from_source
from ..core.runtime import distributed, require_bf16
from ..evaluate import (
    AA_ATTACKS,
    DEFAULT_BATCH_SIZE,
    VERSIONS,
    AutoAttackConfig,
    EvaluateError,
    evaluate_model,
    result_card,
    summary_table,
)
from .common import (
    add_data_args,
    add_device_args,
    add_model_args,
    add_threat_args,
    build_model,
    dataset_label,
    model_id_arg,
    output_dir_arg,
    percent_arg,
    positive_int,
    prepare_for_device,
    read_test_split,
    reconcile_classes,
    resolve_eps,
    venue_arg,
)

log = logging.getLogger(__name__)

OFFICIAL_URL_ENV = "RB_CROSSCLASS_OFFICIAL_URL"
OFFICIAL_URL = "https://raw.githubusercontent.com/RobustBench/robustbench/master/model_info"


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


def fetch_official_card(dataset: str, threat_model: str, name: str, timeout: float = 15.0) -> dict:
    """Download an official card from RobustBench's GitHub (``RB_CROSSCLASS_OFFICIAL_URL`` overrides
    the base URL); a clear error offline."""
    base = os.environ.get(OFFICIAL_URL_ENV, OFFICIAL_URL).rstrip("/")
    url = f"{base}/{dataset}/{threat_model}/{name}.json"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - fixed https base
            text = resp.read().decode("utf-8")
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise EvaluateError(
            f"--from-official: could not download {url} ({err}); offline, pass --official-cards DIR "
            "(a clone's robustbench/model_info) instead"
        ) from err
    return parse_card(text, url)


def _base_card(args, dataset: str, rb_name: str | None, card_name: str, data_name: str) -> dict | None:
    if (args.from_official or args.official_cards) and data_name.startswith("npz:"):
        raise EvaluateError(f"--official-cards/--from-official: which dataset does {args.dataset} hold? "
                            "pass --dataset-name (cifar10, cifar100, imagenet) so the right card is found")
    if args.from_official:
        if rb_name is None:
            raise EvaluateError("--from-official needs a robustbench:<Name> model")
        return fetch_official_card(dataset, args.threat_model, rb_name)
    if not args.official_cards:
        return None
    from ..compat import official_cards_dir

    folder = official_cards_dir(args.official_cards)
    path = official_card_path(folder, dataset, args.threat_model, rb_name or card_name)
    if path.is_file():
        return load_card(path)
    if rb_name is not None:
        raise CardError(f"{path}: no official card for robustbench:{rb_name} in {folder}")
    log.info("no official card %s: the card is filled from the flags", path)
    return None


def run(args: argparse.Namespace) -> int:
    from ..core.io import check_output_dir

    check_output_dir(args.out)  # before any data is read or a model is built
    if args.state:
        check_output_dir(args.state, "--state")
    config = AutoAttackConfig(norm=args.threat_model, eps=resolve_eps(args), version=args.aa_version,
                              attacks=tuple(args.attacks) if args.attacks else None,
                              batch_size=args.batch_size or DEFAULT_BATCH_SIZE, seed=args.seed)
    card_name = args.card_name or model_id_from_source(args.model)
    if args.dataset_name is None and args.card_dataset in KNOWN_DATASETS:
        args.dataset_name = args.card_dataset
    with distributed(args.device) as (ranks, device):
        if args.bf16:
            require_bf16(device, "--bf16")  # before the data and the model are read
        split = read_test_split(args)
        card_dataset = args.card_dataset or split.info.card_name
        rb_name = args.model.split(":", 1)[1] if args.model.startswith("robustbench:") else None
        base = _base_card(args, card_dataset, rb_name, card_name, split.info.name) if ranks.main else None
        if not ranks.main:
            ranks.barrier()  # rank 0 builds first (a robustbench download happens once)
        model = build_model(args, split.info)
        if ranks.main:
            ranks.barrier()
        info = reconcile_classes(model, split.info, args.dataset)
        model = prepare_for_device(model, device, args.channels_last)
        result = evaluate_model(
            model, split.x, split.y, config, device=device, state_dir=args.state,
            class_names=info.class_names, cas=not args.no_cas, pgd=not args.no_pgd,
            score_batch_size=args.score_batch_size, score_bf16=args.bf16, model_name=args.model,
            dataset=card_dataset,
            progress=not args.no_progress, ranks=ranks, aa_exact=args.aa_exact,
        )
        if not ranks.main:
            return 0
        out = Path(args.out)
        descriptive = {k: getattr(args, k) for k in ("link", "authors", "venue", "reported", "footnote")
                       if getattr(args, k) is not None}
        if args.additional_data:
            descriptive["additional_data"] = True
        title = args.title or (base["name"] if base else card_name)
        if args.architecture is not None:
            descriptive["architecture"] = args.architecture
        if base:  # flags given on the command line win over the official card's fields
            base = {**base, **descriptive, "name": title}
        card = result_card(result, name=title, dataset=card_dataset, base=base, **descriptive)
        atomic_write_json(out / "eval.json", result.to_dict())
        card_path = out / f"{card_name}.json"
        write_card(card, card_path)
        print(summary_table(result))
        print(f"wrote {out / 'eval.json'} and {card_path}")
        return 0
