"""The scorer's one error type (kept apart so that every crossclass module can raise it)."""

from ..core.errors import RBCrossclassError


class ScoringError(RBCrossclassError, ValueError):
    """The model or data cannot be scored; the message says why."""
