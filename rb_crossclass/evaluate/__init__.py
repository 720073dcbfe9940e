"""AutoAttack evaluation under RobustBench's protocol, resumable and shardable, with CAS.

- :mod:`.protocol` — the settings (:class:`AutoAttackConfig`: version, attacks, ε, batch size, seed);
- :mod:`.autoattack` — the driver reproducing pyautoattack's ``run_standard_evaluation`` per batch;
- :mod:`.state` — the resume folder; :mod:`.passes` — forward/backward pass counting;
- :mod:`.result` — :func:`evaluate_model` (AutoAttack + cross-class scores), the result record,
  its card and summary.
"""

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
]

lazy_exports(__name__, {
    "AutoAttackOutcome": ".autoattack",
    "run_autoattack": ".autoattack",
    "PassCounter": ".passes",
    "AA_ATTACKS": ".protocol",
    "DEFAULT_BATCH_SIZE": ".protocol",
    "VERSIONS": ".protocol",
    "AutoAttackConfig": ".protocol",
    "EvaluateError": ".protocol",
    "EvalResult": ".result",
    "evaluate_model": ".result",
    "result_card": ".result",
    "summary_table": ".result",
    "EvalState": ".state",
    "model_digest": ".state",
    "tensor_digest": ".state",
})
