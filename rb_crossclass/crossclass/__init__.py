"""Cross-class features (Wei, Guo & Wang, ICML 2025): the metric and the scorer.

- :mod:`.metric` — class attribution vectors, the attribution matrix ``C``, CAS, normalized CAS,
  our feature-sharing index (FSI), streamed per class in float64 (:class:`AttributionAccumulator`);
- :mod:`.scoring` — one pass over a dataset: clean features and the paper's PGD protocol (or
  given adversarial examples), optionally sharded over ``torchrun`` ranks;
- :mod:`.compute` — how a pass computes (device defaults, channels_last, folded batch norms,
  compile, bf16), kept apart from what it computes;
- :mod:`.record` — the ``crossclass.json`` record and its summary; :mod:`.job` — one scoring run
  from names to files (:func:`score_source`, what ``rb-crossclass score`` runs);
- :mod:`.reference` — the paper's own (slow) algorithm, kept only for cross-checks in tests and
  benchmarks.
"""

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

__all__ = [
    "AttributionAccumulator",
    "ComputeSettings",
    "ReferenceResult",
    "ScoreResult",
    "ScoreRun",
    "ScoringError",
    "accuracy_interval",
    "attribution_matrix",
    "bootstrap_cas",
    "cas",
    "class_attribution_vectors",
    "crossclass_record",
    "feature_sharing_index",
    "load_compare",
    "merge_results",
    "normalized_cas",
    "per_class_block",
    "per_class_from_flags",
    "per_class_scores",
    "reference_cas",
    "reference_pgd",
    "result_from_accumulators",
    "score_examples",
    "score_model",
    "score_source",
    "score_summary_lines",
    "top_shared_pairs",
    "valid_classes",
]

if TYPE_CHECKING:
    from .compute import ComputeSettings
    from .job import ScoreRun, score_source
    from .metric import (
        AttributionAccumulator,
        attribution_matrix,
        cas,
        class_attribution_vectors,
        feature_sharing_index,
        normalized_cas,
        per_class_scores,
        top_shared_pairs,
        valid_classes,
    )
    from .per_class import per_class_block, per_class_from_flags
    from .record import crossclass_record, load_compare, score_summary_lines
    from .reference import ReferenceResult, reference_cas, reference_pgd
    from .scoring import (
        ScoreResult,
        ScoringError,
        merge_results,
        result_from_accumulators,
        score_examples,
        score_model,
    )
    from .uncertainty import accuracy_interval, bootstrap_cas


lazy_exports(__name__)
