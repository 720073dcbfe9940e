"""``rb-crossclass score``: attribution matrices, CAS and FSI of a model, as JSON and heatmaps."""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

from ..attacks import PGDConfig
from ..core.errors import RBCrossclassError
from ..core.io import atomic_write_json
from ..core.provenance import now_iso, package_versions
from ..core.runtime import distributed, require_bf16
from ..core.threat import format_eps
from .common import (
    add_data_args,
    add_device_args,
    add_figure_args,
    add_model_args,
    add_threat_args,
    attack_eps_arg,
    build_model,
    figure_style,
    output_dir_arg,
    positive_int,
    read_test_split,
    reconcile_classes,
    resolve_eps,
)

log = logging.getLogger(__name__)

DESCRIPTION = """\
Score a model's cross-class features (Wei, Guo & Wang, ICML 2025): class attribution vectors
A_i = mean over class-i test points of g(x_adv) * W[i], their cosine matrix C and
CAS = sum over i != j of max(C_ij, 0), on adversarial examples of untargeted PGD (paper protocol)
or of any torchattacks attack (--attack torchattacks:PGD:eps=8/255,steps=20, torchattacks:FGSM,
torchattacks:CW:c=1), and on clean inputs; plus our feature-sharing index (FSI, 1..K). Writes
OUT/crossclass.json, OUT/attribution_matrix.png and OUT/attribution_matrix_clean.png; with
--compare OTHER.json also OUT/attribution_matrix_diff.png (this minus other).
"""


def register(subparsers, summary: str) -> None:
    p = subparsers.add_parser("score", help=summary, description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    add_data_args(p)
    add_threat_args(p)
    g = p.add_argument_group("attack")
    g.add_argument("--attack", type=attack_arg, default="pgd", metavar="pgd|none|torchattacks:NAME[:k=v,...]",
                   help="pgd: untargeted PGD on CE with random start (paper protocol; --eps, --steps, "
                   "--step-size); none: clean only; torchattacks:<Name>[:k=v,...]: the examples of any "
                   "torchattacks attack, e.g. torchattacks:PGD:eps=8/255,alpha=2/255,steps=20 or "
                   "torchattacks:FGSM:eps=8/255 (its own arguments; --eps/--steps do not apply)")
    g.add_argument("--steps", type=positive_int, default=20, help="PGD steps (default 20; --attack none "
                   "for clean inputs only)")
    g.add_argument("--step-size", type=attack_eps_arg, default=None,
                   help="PGD step (default eps/4 for Linf, eps/8 for L2)")
    add_device_args(p, batch_help="images per batch (default: 64 on CPU, where small batches stay in the "
                    "caches, 256 on GPU); per-image results do not depend on it on CPU")
    p.add_argument("--no-fold-bn", dest="fold_bn", action="store_false",
                   help="score the model as it is instead of a copy with its eval-mode batch norms folded "
                   "into the convolutions before them (same function, float rounding differs)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the attack's forward and input-backward: a one-off compilation "
                   "(~40 s for a ResNet-18 on CPU); no faster than the default on the CPU measured; "
                   "float rounding differs from the default path")
    g = p.add_argument_group("output")
    g.add_argument("--out", type=output_dir_arg, required=True, metavar="DIR", help="output folder")
    g.add_argument("--compare", metavar="OTHER.json",
                   help="another crossclass.json: also plot this matrix minus its matrix")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--no-intervals", action="store_true",
                   help="skip the bootstrap 95%% intervals of CAS (they keep every point's features)")
    add_figure_args(p)
    p.set_defaults(func=run)


def attack_arg(text: str) -> str:
    """``pgd``, ``none`` or a torchattacks spec (argparse type; the attack name is checked later)."""
    from ..attacks.torchattacks_adapter import TorchattacksError, is_torchattacks_spec, parse_spec

    if text in ("pgd", "none"):
        return text
    if not is_torchattacks_spec(text):
        raise argparse.ArgumentTypeError(f"must be pgd, none or torchattacks:<Name>[:k=v,...], "
                                         f"got {text[:60]!r}")
    try:
        parse_spec(text)
    except TorchattacksError as err:
        raise argparse.ArgumentTypeError(str(err)) from err
    return text


def _load_other(path: Path, k: int) -> dict:
    try:
        other = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RBCrossclassError(f"--compare: file not found: {path}") from None
    except (OSError, json.JSONDecodeError) as err:
        raise RBCrossclassError(f"--compare: {path} is not a readable JSON file ({err})") from err
    matrix = other.get("matrix") if isinstance(other, dict) else None
    if not isinstance(matrix, list) or len(matrix) != k or any(
        not isinstance(r, list) or len(r) != k for r in matrix
    ):
        raise RBCrossclassError(f"--compare: {path} has no {k}x{k} 'matrix' field (a crossclass.json "
                                "of a model with the same classes is needed)")
    return other


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"


def run(args: argparse.Namespace) -> int:
    """Score the model (sharded over the ranks under ``torchrun``); rank 0 writes and prints."""
    from ..core.io import check_output_dir
    from ..crossclass.scoring import default_batch_size, score_examples, score_model

    check_output_dir(args.out)  # before any data is read or a model is built
    with distributed(args.device) as (ranks, device):
        if args.bf16:
            require_bf16(device, "--bf16")  # before the data and the model are read
        split = read_test_split(args)
        model = build_model(args, split.info)
        info = reconcile_classes(model, split.info, args.dataset)
        other = _load_other(Path(args.compare), model.num_classes) if args.compare else None  # fail early
        eps = resolve_eps(args)
        common = dict(batch_size=args.batch_size, device=device, autocast=args.bf16,
                      channels_last=args.channels_last, class_names=list(info.class_names),
                      progress=not args.no_progress, ranks=ranks, intervals=not args.no_intervals,
                      fold_bn=args.fold_bn)
        if args.attack.startswith("torchattacks:"):
            from ..attacks.torchattacks_adapter import describe, torchattacks_examples

            started = time.perf_counter()
            x_adv = torchattacks_examples(model.to(device).eval(), split.x, split.y, args.attack,
                                          batch_size=args.batch_size or default_batch_size(device),
                                          device=device, seed=args.seed,
                                          progress=not args.no_progress, ranks=ranks)
            result = score_examples(model, split.x, x_adv, split.y, attack={**describe(args.attack),
                                                                             "seed": args.seed}, **common)
            result.seconds = time.perf_counter() - started  # the attack and the scoring pass
        else:
            attack = None
            if args.attack == "pgd":
                attack = PGDConfig(eps=eps, steps=args.steps, step_size=args.step_size,
                                   norm=args.threat_model)
            result = score_model(model, split.x, split.y, attack=attack, seed=args.seed,
                                 compile=args.compile, **common)
        if ranks.main:
            _write_outputs(args, model, info, result, eps, device, other, world_size=ranks.world_size)
    return 0


def _write_outputs(args: argparse.Namespace, model, info, result, eps: float, device, other: dict | None,
                   world_size: int) -> None:
    from ..figures import plot_attribution_matrix, plot_matrix_difference

    out, style, class_names = Path(args.out), figure_style(args), list(info.class_names)
    meta = {k: v for k, v in model.meta.items() if isinstance(v, (str, int, float, bool, list, tuple))}
    record = {
        **result.to_dict(),
        "model": {**meta, "source": args.model, "checkpoint": args.checkpoint},
        "dataset": args.dataset, "threat_model": args.threat_model, "eps": eps,
        "eps_string": format_eps(eps), "seed": args.seed, "device": str(device),
        "batch_size": result.compute["batch_size"], "bf16": bool(args.bf16),
        "channels_last": result.compute["channels_last"], "compile": result.compute["compile"],
        "fold_batch_norms": result.compute["fold_batch_norms"],
        "world_size": world_size,
        "created": now_iso(), "versions": package_versions(),
    }
    if args.attack.startswith("torchattacks:"):
        what = args.attack
    else:
        what = f"PGD-{args.steps} {args.threat_model} eps={format_eps(eps)}" if result.attack else "clean"
    figures = [
        plot_attribution_matrix(result.matrix, class_names, out / "attribution_matrix.png",
                                title=f"{args.model} ({what}), CAS {result.cas:.2f}", style=style),
        plot_attribution_matrix(result.clean_matrix, class_names, out / "attribution_matrix_clean.png",
                                title=f"{args.model} (clean), CAS {result.clean_cas:.2f}", style=style),
    ]
    if other is not None:
        figures.append(plot_matrix_difference(
            result.matrix, other["matrix"], class_names, out / "attribution_matrix_diff.png",
            title=f"{_run_label(args.out)} − {_run_label(args.compare)}", style=style))
        other_cas = other.get("cas")
        record["compare"] = {
            "other": str(args.compare), "other_cas": other_cas,
            "cas_difference": result.cas - other_cas if isinstance(other_cas, (int, float)) else None,
        }
    atomic_write_json(out / "crossclass.json", record)
    _print_summary(args, model, result, what, record)
    print(f"wrote            {out / 'crossclass.json'}, " + ", ".join(f.name for f in figures))


def _print_summary(args: argparse.Namespace, model, result, what: str, record: dict) -> None:
    from ..crossclass.per_class import worst_class_words  # torch is imported lazily by the CLI
    from ..crossclass.uncertainty import shown_cas_interval

    k = model.num_classes
    print(f"model            {args.model}  on {args.dataset} (n={result.n_examples}, {k} classes)")
    print(f"attack           {what}" + (f", seed {args.seed}" if result.attack else ""))
    ci = shown_cas_interval({"intervals": result.intervals})
    ci_text = (f", 95% CI {ci}" if isinstance(ci, str) else
               f", 95% CI {_fmt(ci[0])}-{_fmt(ci[1])}" if ci else "")
    present = k - len(result.empty_classes)  # CAS and its maximum count only classes with samples
    among = f" over the {present} classes with samples" if present < k else ""
    print(f"CAS              {_fmt(result.cas)}  (clean {_fmt(result.clean_cas)}, "
          f"max {present * (present - 1)}{among}{ci_text})")
    print(f"normalized CAS   {_fmt(result.normalized_cas)}  (clean {_fmt(result.clean_normalized_cas)})")
    print(f"FSI              {_fmt(result.fsi)}  (clean {_fmt(result.clean_fsi)}, range 1..{k})")
    print(f"accuracy         clean {100 * result.clean_accuracy:.2f}%, robust "
          f"{100 * result.robust_accuracy:.2f}%")
    block = result.to_dict().get("per_class")
    if block and block["worst_class"] is not None:
        print(f"worst class      {worst_class_words(block)}: robust "
              f"{100 * block['worst_class_robust_accuracy']:.2f}% (spread best - worst "
              f"{100 * block['spread']:.2f} points)")
    if result.empty_classes:
        print(f"empty classes    {[result.class_names[i] for i in result.empty_classes]} (left out of CAS)")
    if "compare" in record and record["compare"]["cas_difference"] is not None:
        print(f"compare          CAS {result.cas:.4g} vs {record['compare']['other_cas']:.4g} "
              f"({record['compare']['cas_difference']:+.4g})")
    print(f"seconds          {result.seconds:.1f}")


def _run_label(path: str) -> str:
    """A short name for a compared run: its folder (``runs/best/crossclass.json`` → ``best``)."""
    p = Path(path)
    return (p.parent.name or p.stem) if p.suffix == ".json" else p.name
