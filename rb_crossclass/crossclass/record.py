"""The ``crossclass.json`` record of one scoring run (``rb-crossclass score``, the demo), the
``--compare`` file it can be compared with, and its text summary."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.errors import RBCrossclassError
from ..core.formatting import MISSING, format_number
from ..core.provenance import now_iso, package_versions
from ..core.threat import format_eps
from .per_class import worst_class_words
from .scoring import ScoreResult
from .uncertainty import shown_cas_interval

__all__ = ["compare_block", "crossclass_record", "load_compare", "run_label", "score_summary_lines"]


def crossclass_record(result: ScoreResult, *, source: str, dataset: str, threat_model: str, eps: float,
                      seed: int, checkpoint: str | None = None, model_meta: Mapping[str, Any] | None = None,
                      world_size: int = 1, compare: dict | None = None) -> dict:
    """The JSON object of ``crossclass.json``: every field of ``result.to_dict()``, then the model
    (its plain ``meta`` values, ``source`` and ``checkpoint``), the data and threat model (``eps``
    as a float in input units and RobustBench's string), ``seed``, how the pass computed
    (``device``, ``batch_size``, ``bf16``, ``channels_last``, ``compile``, ``fold_batch_norms``,
    from ``result.compute``), ``world_size``, the creation time and package versions; with
    ``compare`` (:func:`compare_block`) also ``compare``. Raises :class:`KeyError` for a result
    without its ``compute`` record (one read back from an old JSON file)."""
    compute = result.compute or {}
    plain = (str, int, float, bool, list, tuple)
    meta = {k: v for k, v in (model_meta or {}).items() if isinstance(v, plain)}
    record = {
        **result.to_dict(),
        "model": {**meta, "source": source, "checkpoint": checkpoint},
        "dataset": dataset, "threat_model": threat_model, "eps": eps,
        "eps_string": format_eps(eps), "seed": seed, "device": compute["device"],
        "batch_size": compute["batch_size"], "bf16": bool(compute["bf16"]),
        "channels_last": compute["channels_last"], "compile": compute["compile"],
        "fold_batch_norms": compute["fold_batch_norms"],
        "world_size": world_size,
        "created": now_iso(), "versions": package_versions(),
    }
    if compare is not None:
        record["compare"] = compare
    return record


def load_compare(path: str | Path, num_classes: int) -> dict:
    """Another run's ``crossclass.json`` to compare with; raises
    :class:`~rb_crossclass.core.errors.RBCrossclassError` (naming ``--compare``) when it is
    missing, unreadable, or has no ``num_classes`` × ``num_classes`` ``matrix``."""
    path = Path(path)
    try:
        other = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RBCrossclassError(f"--compare: file not found: {path}") from None
    except (OSError, json.JSONDecodeError) as err:
        raise RBCrossclassError(f"--compare: {path} is not a readable JSON file ({err})") from err
    matrix = other.get("matrix") if isinstance(other, dict) else None
    k = num_classes
    if not isinstance(matrix, list) or len(matrix) != k or any(
        not isinstance(r, list) or len(r) != k for r in matrix
    ):
        raise RBCrossclassError(f"--compare: {path} has no {k}x{k} 'matrix' field (a crossclass.json "
                                "of a model with the same classes is needed)")
    return other


def compare_block(result: ScoreResult, other_path: str | Path, other: Mapping[str, Any]) -> dict:
    """``{"other": path, "other_cas": its CAS, "cas_difference": ours - its}`` (``None`` when the
    other file has no numeric CAS)."""
    other_cas = other.get("cas")
    return {"other": str(other_path), "other_cas": other_cas,
            "cas_difference": result.cas - other_cas if isinstance(other_cas, (int, float)) else None}


def run_label(path: str | Path) -> str:
    """A short name for a compared run: its folder (``runs/best/crossclass.json`` → ``best``)."""
    p = Path(path)
    return (p.parent.name or p.stem) if p.suffix == ".json" else p.name


def _fmt(v: float | None) -> str:
    return format_number(v, ".4g")


def score_summary_lines(result: ScoreResult, record: Mapping[str, Any], what: str) -> list[str]:
    """The text summary of a scoring run (model, attack ``what``, CAS with its 95 % interval,
    normalized CAS, FSI, accuracies in %, worst class, empty classes, comparison, seconds)."""
    k = result.num_classes
    source = record["model"]["source"]
    lines = [f"model            {source}  on {record['dataset']} (n={result.n_examples}, {k} classes)",
             f"attack           {what}" + (f", seed {record['seed']}" if result.attack else "")]
    ci = shown_cas_interval({"intervals": result.intervals})
    ci_text = (f", 95% CI {ci}" if isinstance(ci, str) else
               f", 95% CI {_fmt(ci[0])}-{_fmt(ci[1])}" if ci else "")
    present = k - len(result.empty_classes)  # CAS and its maximum count only classes with samples
    among = f" over the {present} classes with samples" if present < k else ""
    lines += [
        f"CAS              {_fmt(result.cas)}  (clean {_fmt(result.clean_cas)}, "
        f"max K(K-1) = {present * (present - 1)}{among}{ci_text})",
        f"normalized CAS   {_fmt(result.normalized_cas)}  (clean {_fmt(result.clean_normalized_cas)})",
        f"FSI              {_fmt(result.fsi)}  (clean {_fmt(result.clean_fsi)}, range 1..{k})",
        f"accuracy         clean {100 * result.clean_accuracy:.2f}%, "
        + (f"robust {100 * result.robust_accuracy:.2f}%" if result.attack
           else f"robust {MISSING} (no attack)"),
    ]
    block = record.get("per_class")
    if block and block["worst_class"] is not None:
        lines.append(f"worst class      {worst_class_words(block)}: robust "
                     f"{100 * block['worst_class_robust_accuracy']:.2f}% (spread best - worst "
                     f"{100 * block['spread']:.2f} points)")
    if result.empty_classes:
        empty = [result.class_names[i] for i in result.empty_classes]
        lines.append(f"empty classes    {empty} (left out of CAS)")
    compare = record.get("compare")
    if compare and compare["cas_difference"] is not None:
        lines.append(f"compare          CAS {result.cas:.4g} vs {compare['other_cas']:.4g} "
                     f"({compare['cas_difference']:+.4g})")
    lines.append(f"seconds          {result.seconds:.1f}")
    return lines
