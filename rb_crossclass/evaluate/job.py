"""One evaluation from names to files: read the data, find the official card to start from,
build the model, run AutoAttack and the cross-class scores, write ``eval.json`` and the card —
what ``rb-crossclass evaluate`` does, reachable from Python as :func:`evaluate_source`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cards import merge_descriptive, official_base_card, write_card
from ..core.datasets import KNOWN_DATASETS
from ..core.io import atomic_write_json, check_output_dir
from ..core.names import model_id_from_source
from ..core.runtime import distributed, require_bf16
from ..crossclass import ComputeSettings
from ..data import open_split
from ..models import ModelSpec, build_model_for_data, prepare_for_device, reconcile_classes
from .protocol import AutoAttackConfig
from .result import EvalResult, evaluate_model, result_card

__all__ = ["EvaluateRun", "evaluate_source"]


@dataclass
class EvaluateRun:
    """What :func:`evaluate_source` produced: the result, its card and the two files written."""

    result: EvalResult
    card: dict
    eval_path: Path
    card_path: Path


def evaluate_source(
    model: ModelSpec | str,
    dataset: str,
    out: str | os.PathLike,
    config: AutoAttackConfig,
    *,
    dataset_name: str | None = None,
    data_dir: str | os.PathLike | None = None,
    n_examples: int | None = None,
    compute: ComputeSettings | None = None,
    state_dir: str | os.PathLike | None = None,
    aa_exact: bool = False,
    cas: bool = True,
    pgd: bool = True,
    progress: bool = True,
    card_name: str | None = None,
    card_dataset: str | None = None,
    title: str | None = None,
    descriptive: Mapping[str, Any] | None = None,
    official_cards: str | os.PathLike | None = None,
    from_official: bool = False,
) -> EvaluateRun | None:
    """Evaluate ``model`` (a :class:`~rb_crossclass.models.ModelSpec`, or just its source string
    such as ``"zoo:<Name>"``) on the first ``n_examples`` test points of ``dataset`` under
    ``config`` (:func:`~rb_crossclass.evaluate.evaluate_model`) and write ``out/eval.json`` and
    ``out/<card_name>.json``.

    ``card_name``: the model ID (default: from the source); ``card_dataset``: the card's dataset
    (default: the data's card name; a RobustBench name also sets ``dataset_name`` when that is
    unset); ``title``: the card's ``name`` (default: the official card's, else ``card_name``);
    ``descriptive``: RobustBench's descriptive fields (``link``, ``authors``, ``venue``,
    ``reported``, ``footnote``, ``architecture``, ``additional_data``), which win over the
    official card found by ``official_cards`` / ``from_official``
    (:func:`~rb_crossclass.cards.official_base_card`). ``compute``:
    :class:`~rb_crossclass.crossclass.ComputeSettings` (``device=None``: CUDA when available;
    ``bf16`` for the scoring only). Under ``torchrun`` rank 0 writes and gets the
    :class:`EvaluateRun`, the other ranks get ``None``.

    Raises :class:`~rb_crossclass.core.errors.RBCrossclassError` subclasses for a bad output or
    state folder (before any work), bf16 without hardware support, unreadable data or model,
    class counts that disagree, and an official card that cannot be found or downloaded.
    """
    compute = compute if compute is not None else ComputeSettings(device=None)
    descriptive = dict(descriptive or {})
    model = ModelSpec.of(model)
    check_output_dir(out)  # before any data is read or a model is built
    if state_dir:
        check_output_dir(state_dir, "--state")
    card_name = card_name or model_id_from_source(model.source)
    if dataset_name is None and card_dataset in KNOWN_DATASETS:
        dataset_name = card_dataset
    device_name = None if compute.device is None else str(compute.device)
    with distributed(device_name) as (ranks, device):
        if compute.bf16:
            require_bf16(device, "--bf16")  # before the data and the model are read
        split = open_split(dataset, "test", n_examples, data_dir, dataset_name=dataset_name,
                           model_name=model.robustbench_name, threat_model=config.norm)
        card_dataset = card_dataset or split.info.card_name
        base = None
        if ranks.main:
            base = official_base_card(dataset=card_dataset, threat_model=config.norm, card_name=card_name,
                                      robustbench_name=model.robustbench_name, official_cards=official_cards,
                                      from_official=from_official, data_spec=split.info.name)
        else:  # rank 0 builds first (a robustbench download happens once)
            ranks.barrier()
        net = build_model_for_data(model, split.info, config.norm)
        if ranks.main:
            ranks.barrier()
        info = reconcile_classes(net, split.info, dataset)
        net = prepare_for_device(net, device, bool(compute.channels_last))
        result = evaluate_model(
            net, split.x, split.y, config,
            compute=ComputeSettings(device=device, bf16=compute.bf16, batch_size=compute.batch_size,
                                    threads=compute.threads),
            state_dir=state_dir, class_names=info.class_names, cas=cas, pgd=pgd, model_name=model.source,
            dataset=card_dataset, progress=progress, ranks=ranks, aa_exact=aa_exact)
        if not ranks.main:
            return None
        out = Path(out)
        title = title or (base["name"] if base else card_name)
        base = merge_descriptive(base, descriptive, title)  # the caller's fields win over the official card's
        card = result_card(result, name=title, dataset=card_dataset, base=base, **descriptive)
        atomic_write_json(out / "eval.json", result.to_dict())
        card_path = out / f"{card_name}.json"
        write_card(card, card_path)
        return EvaluateRun(result, card, out / "eval.json", card_path)
