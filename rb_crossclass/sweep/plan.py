"""``--plan``: which models the cross-class metric applies to, decided without any weights.

Every model is built without its checkpoint and ends in one :class:`PlanEntry`: *applicable*
(a FeatureClassifier whose ``F.linear(features, W, b)`` equals the logits) or *not applicable*
with the reason named (see :mod:`rb_crossclass.models.structure`), or *failed* with the error
(the build itself broke; nothing else stops a plan).

RobustBench entries go through two tiers:

1. **structure** — parameters on the ``meta`` device (no memory, no download): one traced
   forward names ensembles, mixing networks, output transforms and random draws;
2. **contract** — random weights on CPU and the project's own
   :func:`~rb_crossclass.models.check_contract` on a probe: the numbers confirm the algebra.
   ``contract_max_params`` skips it for larger models (their verdict is then the structure's);
   it always runs when the structure cannot be read on ``meta`` (data-dependent constructors).

Manifest models are built from their source without a checkpoint (random init) and checked with
the contract. :func:`write_plan` writes ``plan.json`` and ``plan.md`` (counts by reason and the
list).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..core.formatting import format_number
from ..core.io import atomic_write_json, atomic_write_text
from ..core.provenance import now_iso, package_versions
from .jobs import ModelJob, SweepSettings, one_line
from .worker import quiet_stdout

log = logging.getLogger(__name__)

PLAN_STATUSES = ("applicable", "not_applicable", "failed")


@dataclass
class PlanEntry:
    """One model's verdict. ``tier``: ``structure`` (meta device) or ``contract`` (random weights,
    numbers checked); ``built``: how the architecture was made (``timm:<name>`` or ``zoo callable``
    for RobustBench, the source string otherwise); ``params`` in values; ``max_abs_diff`` of
    ``F.linear(features, W, b)`` and the logits on the probe (contract tier)."""

    name: str
    dataset: str
    threat_model: str
    status: str
    reason: str
    detail: str = ""
    tier: str = ""
    built: str = ""
    params: int | None = None
    head: str | None = None
    feature_dim: int | None = None
    num_classes: int | None = None
    max_abs_diff: float | None = None
    seconds: float = 0.0
    no_weights: list[str] = field(default_factory=list)

    @property
    def applicable(self) -> bool:
        return self.status == "applicable"

    def to_dict(self) -> dict:
        return asdict(self)


def plan_robustbench_entry(name: str, dataset: str, threat_model: str, *,
                           contract_max_params: int | None = None) -> PlanEntry:
    """The verdict on one entry of robustbench's model zoo, built without weights."""
    from ..core.datasets import known_dataset
    from ..models.sources.robustbench import architecture_builder, build_architecture, input_shape
    from ..models.structure import count_parameters, inspect_structure

    start = time.perf_counter()
    entry = PlanEntry(name, dataset, threat_model, status="failed", reason="")
    try:
        k = known_dataset(dataset).num_classes
        shape = input_shape(name, dataset, threat_model)
        _, entry.built = architecture_builder(name, dataset, threat_model)
        changed: list[str] = []
        try:
            with quiet_stdout():
                net = build_architecture(name, dataset, threat_model, on_meta=True, changed=changed)
            entry.params = count_parameters(net)
            report = inspect_structure(net, torch.empty(2, *shape, device="meta"), k)
            del net
        except Exception as err:  # noqa: BLE001 - constructors that read tensor values
            report = None
            entry.detail = f"structure on meta not readable: {one_line(err, 200)}"
        entry.no_weights = sorted(set(changed))
        if report is not None and report.known:
            _take(entry, report, "structure")
            if not report.applicable:
                return _timed(entry, start)
        limit = contract_max_params
        small = entry.params is not None and (limit is None or entry.params <= limit)
        if report is None or not report.known or small:
            _contract(entry, lambda: build_architecture(name, dataset, threat_model), shape, k)
    except Exception as err:  # noqa: BLE001 - a plan never stops at one entry
        entry.status, entry.reason, entry.detail = "failed", "failed", one_line(err)
    return _timed(entry, start)


def plan_job(job: ModelJob, settings: SweepSettings) -> PlanEntry:
    """The verdict on a manifest model: built from its source with random weights, contract checked."""
    from ..core.datasets import known_dataset
    from ..models import SourceOptions, create_model_source

    start = time.perf_counter()
    entry = PlanEntry(job.name, settings.dataset, settings.threat_model, status="failed", reason="",
                      built=job.source)
    if job.robustbench_name is not None:
        planned = plan_robustbench_entry(job.robustbench_name, settings.dataset, settings.threat_model)
        planned.name = job.name
        return planned
    try:
        info = known_dataset(settings.dataset)
        opts = SourceOptions.for_data(info, dataset=settings.dataset, threat_model=settings.threat_model,
                                      head_name=job.head, extra=dict(job.kwargs))
        _contract(entry, lambda: create_model_source(job.source, opts, check=False), info.shape,
                  info.num_classes)
    except Exception as err:  # noqa: BLE001
        entry.status, entry.reason, entry.detail = "failed", "failed", one_line(err)
    return _timed(entry, start)


def _take(entry: PlanEntry, report, tier: str) -> None:
    entry.tier = tier
    entry.status = "applicable" if report.applicable else "not_applicable"
    entry.reason, entry.detail = report.reason, report.detail
    entry.head, entry.feature_dim, entry.num_classes = report.head, report.feature_dim, report.num_classes


def _contract(entry: PlanEntry, build, shape: Sequence[int], k: int) -> None:
    """Random weights + wrap + check_contract on a probe; fills ``entry`` (tier ``contract``)."""
    from ..models import FeatureClassifier, ModelContractError, check_contract, wrap_model
    from ..models.feature_classifier import MODEL_FAULTS, with_head_hint
    from ..models.structure import count_parameters, not_applicable_reason

    entry.tier = "contract"
    probe = torch.rand(2, *shape, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)  # the random weights
    try:
        with quiet_stdout():
            built = build()
        net = built.net if isinstance(built, FeatureClassifier) else built
        entry.params = count_parameters(net)
        model = built if isinstance(built, FeatureClassifier) else wrap_model(net)
    except ModelContractError as err:  # no head to wrap
        entry.status, entry.reason, entry.detail = "not_applicable", err.reason, str(err)
        return
    model.eval()
    try:
        diff = check_contract(model, probe)
    except ModelContractError as err:
        if err.reason in MODEL_FAULTS:
            raise
        reason, detail = not_applicable_reason(model.net, err, model.normalize(probe), k)
        entry.status, entry.reason, entry.detail = "not_applicable", reason, detail
        return
    if model.meta.get("randomized"):
        entry.status, entry.reason = "not_applicable", "randomized"
        entry.detail = with_head_hint("two forwards of the same input differ")
        return
    entry.status, entry.reason, entry.max_abs_diff = "applicable", "ok", diff
    entry.head = getattr(model.extractor, "head_name", None) or "get_classifier()"
    entry.feature_dim, entry.num_classes = model.feature_dim, model.num_classes
    entry.detail = f"F.linear(features, W, b) equals the logits on a probe (max |diff| {diff:.2g})"


def _timed(entry: PlanEntry, start: float) -> PlanEntry:
    entry.seconds = round(time.perf_counter() - start, 3)
    return entry


# --------------------------------------------------------------------------- outputs
def plan_counts(entries: Sequence[PlanEntry]) -> dict[str, int]:
    """Entries per reason (``ok`` for applicable ones), most frequent first."""
    return dict(Counter(e.reason for e in entries).most_common())


def plan_markdown(entries: Sequence[PlanEntry], title: str) -> str:
    """The applicability table: counts by reason, not-applicable entries with their reason, then
    every entry."""
    n_ok = sum(e.applicable for e in entries)
    lines = [f"# {title}", "",
             f"{len(entries)} models: {n_ok} applicable, "
             f"{sum(e.status == 'not_applicable' for e in entries)} not applicable, "
             f"{sum(e.status == 'failed' for e in entries)} failed.", "",
             "| reason | models |", "|---|---|"]
    lines += [f"| {reason} | {count} |" for reason, count in plan_counts(entries).items()]
    odd = [e for e in entries if not e.applicable]
    if odd:
        lines += ["", "## Not applicable or failed", ""]
        lines += [f"- {e.dataset}/{e.threat_model}/{e.name}: **{e.reason}** — {_cell(e.detail, 400)}"
                  for e in odd]
    lines += ["", "## Every model", "",
              "| dataset | threat model | name | verdict | tier | head | D | params (M) | built |",
              "|---|---|---|---|---|---|---|---|---|"]
    for e in entries:
        params = format_number(e.params, ".1f", scale=1e-6)
        lines.append(f"| {e.dataset} | {e.threat_model} | {e.name} | {e.reason} | {e.tier or '—'} | "
                     f"{e.head or '—'} | {e.feature_dim or '—'} | {params} | {_cell(e.built, 80)} |")
    return "\n".join(lines) + "\n"


def _cell(text: str, limit: int) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[:limit] + "..."


def write_plan(out: str | Path, entries: Sequence[PlanEntry], title: str, source: dict) -> tuple[Path, Path]:
    """``out/plan.json`` (every entry, counts, versions) and ``out/plan.md``; returns both paths."""
    out = Path(out)
    data = {"source": source, "created": now_iso(), "package_versions": package_versions(),
            "counts": plan_counts(entries),
            "status_counts": {s: sum(e.status == s for e in entries) for s in PLAN_STATUSES},
            "entries": [e.to_dict() for e in entries]}
    atomic_write_json(out / "plan.json", data)
    atomic_write_text(out / "plan.md", plan_markdown(entries, title))
    return out / "plan.json", out / "plan.md"
