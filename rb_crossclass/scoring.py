"""Documented import path ``rb_crossclass.scoring``: the scorer lives in
:mod:`rb_crossclass.crossclass.scoring`."""

from .crossclass.scoring import (  # noqa: F401
    ScoreResult,
    ScoringError,
    merge_results,
    result_from_accumulators,
    score_examples,
    score_model,
)
