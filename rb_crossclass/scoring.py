"""Documented import path ``rb_crossclass.scoring``: the scorer lives in
:mod:`rb_crossclass.crossclass.scoring`."""

from .crossclass.scoring import (  # noqa: F401
    CPU_BATCH_SIZE,
    GPU_BATCH_SIZE,
    ScoreResult,
    ScoringError,
    default_batch_size,
    merge_results,
    result_from_accumulators,
    score_examples,
    score_model,
)
