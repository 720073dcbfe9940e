"""AutoAttack evaluation under RobustBench's protocol, resumable and shardable, with CAS.

- :mod:`.protocol` — the settings (:class:`AutoAttackConfig`: version, attacks, ε, batch size, seed);
- :mod:`.autoattack` — the driver reproducing pyautoattack's ``run_standard_evaluation`` per batch;
- :mod:`.state` — the resume folder; :mod:`.passes` — forward/backward pass counting;
- :mod:`.result` — :func:`evaluate_model` (AutoAttack + cross-class scores), the result record,
  its card and summary;
- :mod:`.job` — :func:`evaluate_source`: one evaluation from names to files (what
  ``rb-crossclass evaluate`` runs).
"""

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

__all__ = [
    "AA_ATTACKS",
    "AutoAttackConfig",
    "AutoAttackOutcome",
    "DEFAULT_BATCH_SIZE",
    "EvalResult",
    "EvalState",
    "EvaluateError",
    "EvaluateRun",
    "PassCounter",
    "PassTally",
    "VERSIONS",
    "count_passes",
    "evaluate_model",
    "evaluate_source",
    "model_digest",
    "result_card",
    "run_autoattack",
    "summary_table",
    "tensor_digest",
]

if TYPE_CHECKING:
    from .autoattack import AutoAttackOutcome, run_autoattack
    from .job import EvaluateRun, evaluate_source
    from .passes import PassCounter, PassTally, count_passes
    from .protocol import AA_ATTACKS, DEFAULT_BATCH_SIZE, VERSIONS, AutoAttackConfig, EvaluateError
    from .result import EvalResult, evaluate_model, result_card, summary_table
    from .state import EvalState, model_digest, tensor_digest


lazy_exports(__name__)
