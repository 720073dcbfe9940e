"""AutoAttack evaluation under RobustBench's protocol, resumable and shardable, with CAS.

- :mod:`.protocol` — the settings (:class:`AutoAttackConfig`: version, attacks, ε, batch size, seed);
- :mod:`.autoattack` — the driver reproducing pyautoattack's ``run_standard_evaluation`` per batch;
- :mod:`.state` — the resume folder; :mod:`.passes` — forward/backward pass counting;
- :mod:`.result` — :func:`evaluate_model` (AutoAttack + cross-class scores), the result record,
  its card and summary.
"""

from typing import TYPE_CHECKING

from ..core.lazy import lazy_exports

__all__ = [
    "AA_ATTACKS",
    "DEFAULT_BATCH_SIZE",
    "VERSIONS",
    "AutoAttackConfig",
    "AutoAttackOutcome",
    "EvalResult",
    "EvalState",
    "EvaluateError",
    "PassCounter",
    "evaluate_model",
    "model_digest",
    "result_card",
    "run_autoattack",
    "summary_table",
    "tensor_digest",
    "PassTally",
    "count_passes",
]

if TYPE_CHECKING:
    from .autoattack import AutoAttackOutcome, run_autoattack
    from .passes import PassCounter, PassTally, count_passes
    from .protocol import AA_ATTACKS, DEFAULT_BATCH_SIZE, VERSIONS, AutoAttackConfig, EvaluateError
    from .result import EvalResult, evaluate_model, result_card, summary_table
    from .state import EvalState, model_digest, tensor_digest

lazy_exports(__name__)
