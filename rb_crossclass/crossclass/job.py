"""One scoring run from names to files: read the data, build the model, score it (the paper's
PGD, clean only, or any torchattacks attack) and write ``crossclass.json`` and the heatmaps —
what ``rb-crossclass score`` does, reachable from Python as :func:`score_source`."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..attacks import PGDConfig
from ..core.io import atomic_write_json, check_output_dir
from ..core.runtime import distributed, require_bf16
from ..core.threat import PAPER_PGD_STEPS, check_eps, default_eps, format_eps
from ..data import open_split
from ..models import ModelSpec, build_model_for_data, reconcile_classes
from .compute import ComputeSettings, default_batch_size
from .record import compare_block, crossclass_record, load_compare, run_label, score_summary_lines
from .scoring import ScoreResult, score_examples, score_model

if TYPE_CHECKING:
    from ..figures import FigureStyle

__all__ = ["ScoreRun", "score_source"]


@dataclass
class ScoreRun:
    """What :func:`score_source` produced: the result, the ``crossclass.json`` record, the attack
    in words (``what``), the files written and the summary's lines."""

    result: ScoreResult
    record: dict
    what: str
    files: list[Path] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)


def score_source(
    model: ModelSpec | str,
    dataset: str,
    out: str | os.PathLike,
    *,
    dataset_name: str | None = None,
    data_dir: str | os.PathLike | None = None,
    n_examples: int | None = None,
    threat_model: str = "Linf",
    eps: float | None = None,
    attack: str = "pgd",
    steps: int = PAPER_PGD_STEPS,
    step_size: float | None = None,
    compute: ComputeSettings | None = None,
    seed: int = 0,
    compare: str | os.PathLike | None = None,
    progress: bool = True,
    intervals: bool = True,
    style: FigureStyle | None = None,
) -> ScoreRun | None:
    """Score ``model`` (a :class:`~rb_crossclass.models.ModelSpec`, or just its source string such
    as ``"zoo:<Name>"``) on the first ``n_examples`` test points of ``dataset`` and write
    ``out/crossclass.json``, ``out/attribution_matrix.png`` and ``out/attribution_matrix_clean.png``
    (with ``compare``, another run's ``crossclass.json``: also ``attribution_matrix_diff.png``,
    this matrix minus its matrix, and a ``compare`` block).

    ``attack``: ``"pgd"`` (the paper's protocol: untargeted PGD-``steps`` at ``eps``, default
    RobustBench's ε of ``threat_model``, step ``step_size`` or ε/4 ℓ∞ / ε/8 ℓ2), ``"none"``
    (clean only) or ``"torchattacks:<Name>[:k=v,...]"`` (that attack's examples; ``eps`` and
    ``steps`` do not apply). ``compute``: :class:`ComputeSettings` (``device=None``: CUDA when
    available). Under ``torchrun`` the batches are sharded over the ranks; rank 0 writes and gets
    the :class:`ScoreRun`, the other ranks get ``None``.

    Raises :class:`~rb_crossclass.core.errors.RBCrossclassError` subclasses for a bad output
    folder (before any work), bf16 without hardware support, data or model that cannot be read,
    class counts that disagree (:func:`~rb_crossclass.models.reconcile_classes`) and a bad
    ``compare`` file (before scoring).
    """
    model = ModelSpec.of(model)
    compute = compute if compute is not None else ComputeSettings(device=None)
    check_output_dir(out)  # before any data is read or a model is built
    eps = default_eps(threat_model) if eps is None else check_eps(eps, threat_model)
    device_name = None if compute.device is None else str(compute.device)
    with distributed(device_name) as (ranks, device):
        if compute.bf16:
            require_bf16(device, "--bf16")  # before the data and the model are read
        compute = compute.replace(device=device)
        split = open_split(dataset, "test", n_examples, data_dir, dataset_name=dataset_name,
                           model_name=model.robustbench_name, threat_model=threat_model)
        net = build_model_for_data(model, split.info, threat_model)
        info = reconcile_classes(net, split.info, dataset)
        other = load_compare(compare, net.num_classes) if compare else None  # fail before the work
        names = list(info.class_names)
        common = dict(compute=compute, class_names=names, progress=progress, ranks=ranks, intervals=intervals)
        if attack.startswith("torchattacks:"):
            from ..attacks.torchattacks_adapter import describe, torchattacks_examples

            started = time.perf_counter()
            x_adv = torchattacks_examples(net.to(device).eval(), split.x, split.y, attack,
                                          batch_size=compute.batch_size or default_batch_size(device),
                                          device=device, seed=seed, progress=progress, ranks=ranks)
            result = score_examples(net, split.x, x_adv, split.y, attack={**describe(attack), "seed": seed},
                                    seed=seed, **common)  # seed: the CAS bootstrap's too, as for PGD
            result.seconds = time.perf_counter() - started  # the attack and the scoring pass
            what = attack
        else:
            pgd_config = (PGDConfig(eps=eps, steps=steps, step_size=step_size, norm=threat_model)
                          if attack == "pgd" else None)
            result = score_model(net, split.x, split.y, attack=pgd_config, seed=seed, **common)
            what = f"PGD-{steps} {threat_model} eps={format_eps(eps)}" if result.attack else "clean"
        if not ranks.main:
            return None
        from ..figures import FigureStyle, plot_attribution_matrix, plot_matrix_difference

        out = Path(out)
        style = style or FigureStyle()
        record = crossclass_record(
            result, source=model.source, checkpoint=model.checkpoint, model_meta=net.meta, dataset=dataset,
            threat_model=threat_model, eps=eps, seed=seed, world_size=ranks.world_size,
            compare=compare_block(result, compare, other) if other is not None else None)
        files = [
            plot_attribution_matrix(result.matrix, names, out / "attribution_matrix.png",
                                    title=f"{model.source} ({what}), CAS {result.cas:.2f}", style=style),
            plot_attribution_matrix(result.clean_matrix, names, out / "attribution_matrix_clean.png",
                                    title=f"{model.source} (clean), CAS {result.clean_cas:.2f}", style=style),
        ]
        if other is not None:
            files.append(plot_matrix_difference(
                result.matrix, other["matrix"], names, out / "attribution_matrix_diff.png",
                title=f"{run_label(out)} − {run_label(compare)}", style=style))
        atomic_write_json(out / "crossclass.json", record)
        return ScoreRun(result, record, what, [out / "crossclass.json", *files],
                        score_summary_lines(result, record, what))
