"""Scoring one model of a sweep: :func:`run_job`, the same function in every engine.

For one :class:`~rb_crossclass.sweep.jobs.ModelJob`:

1. a RobustBench entry is first judged by its structure on the ``meta`` device
   (:func:`~rb_crossclass.models.structure.inspect_structure`): ensembles and mixing networks are
   *not applicable* before any checkpoint is downloaded;
2. a checkpoint given by URL is downloaded into ``<model_dir>/downloads/<name>/``; a ``sha256``
   is checked before the file is read;
3. the model is built (:func:`~rb_crossclass.models.create_model_source`) and the contract
   ``F.linear(features, W, b) == logits`` checked on two test images; a refused or randomized
   model is *not applicable*, with the reason named;
4. clean accuracy and the cross-class scores under the paper's PGD-20 protocol on the first N
   test points (:func:`~rb_crossclass.crossclass.score_model`); with ``autoattack`` the whole
   evaluation of :func:`~rb_crossclass.evaluate.evaluate_model` (AutoAttack, CAS on its own
   examples, and the PGD-20 protocol);
5. the card is built and validated (written by the caller, so a Ray worker needs no shared disk
   for outputs).

Any exception ends as ``status="failed"`` with its one-line error: one bad model never stops a
sweep. Parameters are frozen (attacks need input gradients only), and every forward and backward
through the model is counted.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import torch

from ..core.errors import RBCrossclassError
from ..core.runtime import cpu_threads, resolve_device
from ..core.threat import PAPER_PGD_STEPS
from ..evaluate.passes import count_passes
from .jobs import JobResult, ModelJob, SweepSettings, one_line

log = logging.getLogger(__name__)


def __getattr__(name: str) -> type:
    """``CheckpointMismatch``: a checkpoint whose sha256 differs from the one its manifest records,
    now :class:`rb_crossclass.models.checkpoint.ChecksumMismatchError` (the one checksum error),
    imported when asked for so that importing the sweep does not import the model stage."""
    if name == "CheckpointMismatch":
        from ..models.checkpoint import ChecksumMismatchError

        return ChecksumMismatchError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run_job(job: ModelJob, settings: SweepSettings, split=None) -> JobResult:
    """Score ``job`` under ``settings``; never raises for a failure of the model (see the module
    docstring). ``split`` (a :class:`~rb_crossclass.data.Split`) saves reading the test data again
    when the caller has it."""
    start = time.perf_counter()
    previous = torch.get_num_threads()
    torch.set_num_threads(settings.threads or cpu_threads())
    counts: dict[str, int] = {}
    device = ""
    try:
        dev = resolve_device(None)
        device = _describe(dev)
        result = _run(job, settings, split, dev, counts)
    except Exception as err:  # noqa: BLE001 - a failure of one model is recorded, the sweep goes on
        log.debug("%s failed", job.name, exc_info=True)
        result = JobResult(job.name, "failed", reason=one_line(err))
    finally:
        torch.set_num_threads(previous)
    result.seconds = time.perf_counter() - start
    result.passes = dict(counts)
    result.device = device
    return result


def _describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def _run(job: ModelJob, settings: SweepSettings, split, device: torch.device,
         counts: dict[str, int]) -> JobResult:
    from ..models import (
        ModelContractError,
        SourceOptions,
        check_contract,
        create_model_source,
        reconcile_classes,
    )
    from ..models.feature_classifier import MODEL_FAULTS, with_head_hint
    from ..models.structure import not_applicable_reason
    from .data import open_job_split

    if job.robustbench_name is not None:
        verdict = _structure_verdict(job.robustbench_name, settings)
        if verdict is not None:
            return JobResult(job.name, "not_applicable", reason=verdict[0], detail=verdict[1])
    checkpoint = _local_checkpoint(job, settings.model_dir)
    if split is None:  # a Ray task: its model's own preprocessing (ImageNet), as evaluate reads it
        split = open_job_split(job, settings)
    info = split.info
    opts = SourceOptions.for_data(info, dataset=settings.dataset, threat_model=settings.threat_model,
                                  model_dir=settings.model_dir, checkpoint=checkpoint, head_name=job.head,
                                  extra=dict(job.kwargs), seed=settings.seed)
    try:
        with quiet_stdout():
            model = create_model_source(job.source, opts, check=False)
    except ModelContractError as err:
        return JobResult(job.name, "not_applicable", reason=err.reason, detail=str(err))
    probe = split.x[:2]
    try:
        check_contract(model, probe)
    except ModelContractError as err:
        if err.reason in MODEL_FAULTS:
            raise
        reason, detail = not_applicable_reason(model.net, err, model.normalize(probe), info.num_classes)
        return JobResult(job.name, "not_applicable", reason=reason, detail=detail)
    if model.meta.get("randomized"):
        return JobResult(job.name, "not_applicable", reason="randomized",
                         detail=with_head_hint("two forwards of the same input differ: the attribution "
                                               "of a point is not defined"))
    reconcile_classes(model, info, settings.dataset)  # the one rule; a sweep's data always declare K
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    with count_passes(model) as passes:
        try:
            return _score(job, settings, model, split, device)
        finally:  # a model that fails half-way still reports what it cost
            counts.update(passes)


def _score(job: ModelJob, settings: SweepSettings, model, split, device: torch.device) -> JobResult:
    from ..attacks import PGDConfig
    from ..cards import CardDescription, card_from_results, cross_class_block
    from ..crossclass import ComputeSettings, score_model
    from ..evaluate import AutoAttackConfig, evaluate_model, result_card

    names = list(split.info.class_names)
    base = dict(job.card)
    title = base.get("name") or job.name
    architecture = base.get("architecture") or str(model.meta.get("architecture", ""))
    metrics: dict = {"n_examples": int(len(split.y))}
    if settings.autoattack:
        config = AutoAttackConfig(norm=settings.threat_model, eps=settings.eps, version=settings.aa_version,
                                  batch_size=settings.batch_size, seed=settings.seed)
        res = evaluate_model(model, split.x, split.y, config, compute=ComputeSettings(device=device),
                             class_names=names, cas=True,
                             pgd=True, model_name=job.source, dataset=settings.dataset,
                             progress=settings.progress, state_dir=settings.model_state_dir(job.name),
                             aa_exact=settings.aa_exact)
        card = result_card(res, name=title, dataset=settings.dataset, architecture=architecture, base=base)
        pgd_scores, aa_scores, record = res.cross_class_pgd, res.cross_class, res.to_dict()
        metrics.update(clean_acc=res.clean_accuracy, autoattack_acc=res.robust_accuracy,
                       cas_autoattack=aa_scores["cas"], normalized_cas_autoattack=aa_scores["normalized_cas"])
    else:
        score = score_model(model, split.x, split.y,
                            attack=PGDConfig(eps=settings.eps, steps=PAPER_PGD_STEPS,
                                             norm=settings.threat_model),
                            compute=ComputeSettings(device=device, batch_size=settings.batch_size),
                            seed=settings.seed, class_names=names, progress=settings.progress)
        pgd_scores = score.to_dict()
        record = {"cross_class_pgd": pgd_scores, "model_info": _plain(model.meta)}
        footnote = (f"rb-crossclass sweep: cross-class scores (PGD-20) on the first {len(split.y)} test "
                    "points, no AutoAttack evaluation (no autoattack_acc; the PGD-20 accuracy is in "
                    "cross_class).")
        card = card_from_results(
            name=title, dataset=settings.dataset, threat_model=settings.threat_model, eps=settings.eps,
            clean_accuracy=score.clean_accuracy, robust_accuracy=None,
            cross_class=cross_class_block(pgd_scores, pgd_scores["attack"]), base=base,
            description=CardDescription(architecture=architecture,
                                        footnote=" ".join(filter(None, [base.get("footnote"), footnote]))))
        metrics.update(clean_acc=score.clean_accuracy)
    metrics.update(pgd_robust_acc=pgd_scores["robust_accuracy"], cas_pgd=pgd_scores["cas"],
                   normalized_cas_pgd=pgd_scores["normalized_cas"])
    if settings.extra_eps:
        other = [_other_eps(model, split, settings, device, names, eps) for eps in settings.extra_eps]
        card["cross_class"]["other_eps"] = other
        record["cross_class_other_eps"] = other
        for o in other:
            metrics[f"pgd_robust_acc@{o['eps_string']}"] = o["robust_accuracy"]
            metrics[f"cas_pgd@{o['eps_string']}"] = o["cas"]
    for key in ("clean_acc", "autoattack_acc"):  # the numbers the card started from, kept beside ours
        if base.get(key) not in (None, ""):
            card[f"x_reported_{key}"] = base[key]
    card.update({k: v for k, v in base.items() if k.startswith("x_")})  # extension fields (provenance)
    return JobResult(job.name, "done", metrics=metrics, card=card, record=record)


def _other_eps(model, split, settings: SweepSettings, device: torch.device, names: list[str],
               eps: float) -> dict:
    """The paper's PGD-20 protocol at a further radius ``eps``: robust accuracy, CAS (with its
    bootstrap interval) and the attribution-vs-confusion check, as a card's ``other_eps`` entry."""
    from ..attacks import PGDConfig
    from ..core.threat import format_eps
    from ..crossclass import ComputeSettings, score_model

    attack = PGDConfig(eps=eps, steps=PAPER_PGD_STEPS, norm=settings.threat_model)
    d = score_model(model, split.x, split.y, attack=attack,
                    compute=ComputeSettings(device=device, batch_size=settings.batch_size),
                    seed=settings.seed, class_names=names,
                    progress=settings.progress, intervals=True, desc=f"PGD-20 at {format_eps(eps)}").to_dict()
    keep = ("robust_accuracy", "clean_accuracy", "cas", "normalized_cas", "fsi", "n_examples", "attack",
            "intervals", "confusion_correlation")
    kept = {k: d[k] for k in keep if d.get(k) is not None}
    return {"eps": float(eps), "eps_string": format_eps(eps), **kept}


def _plain(meta: dict) -> dict:
    return {k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool))}


def _structure_verdict(name: str, settings: SweepSettings) -> tuple[str, str] | None:
    """``(reason, detail)`` when a RobustBench entry's structure rules the metric out, else ``None``
    (applicable, or the structure cannot be read without weights)."""
    from ..core.datasets import known_dataset
    from ..models.sources.robustbench import build_architecture, input_shape
    from ..models.structure import inspect_structure

    try:
        with quiet_stdout():
            net = build_architecture(name, settings.dataset, settings.threat_model, on_meta=True)
    except Exception as err:  # noqa: BLE001 - third-party constructors; the weighted build decides
        log.debug("%s: no structure check on meta (%s)", name, one_line(err))
        return None
    probe = torch.empty(2, *input_shape(name, settings.dataset, settings.threat_model), device="meta")
    report = inspect_structure(net, probe, known_dataset(settings.dataset).num_classes)
    if report.known and not report.applicable:
        return report.reason, report.detail
    return None


def _local_checkpoint(job: ModelJob, model_dir: str) -> str | None:
    """The checkpoint as a local file (downloaded when it is a URL), its sha256 checked."""
    from ..models.checkpoint import check_sha256, download_checkpoint

    if job.checkpoint is None and job.url is None:
        return None
    path = job.checkpoint
    if path is None or (urlparse(path).scheme not in ("http", "https") and not os.path.isfile(path)
                        and job.url is not None):
        path = job.url  # the local copy is absent: the original address
    if urlparse(path).scheme in ("http", "https"):
        target = Path(model_dir) / "downloads" / job.name / (Path(urlparse(path).path).name or "checkpoint")
        where = f" or place the file at {job.checkpoint}" if job.checkpoint else ""
        path = str(download_checkpoint(path, target, sha256=job.sha256, recorded_by="the manifest's",
                                       place_hint=where))
    if not os.path.isfile(path):
        raise RBCrossclassError(f"checkpoint {path} not found")
    if job.sha256:
        check_sha256(path, job.sha256, recorded_by="the manifest's")
    return path


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Third-party constructors print (robustbench's mixing networks): keep stdout for our output."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield
    if buffer.getvalue().strip():
        log.debug("model construction printed: %s", buffer.getvalue()[:2000])
