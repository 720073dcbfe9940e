"""The error of the data stage."""

from ..core.errors import RBCrossclassError


class DatasetError(RBCrossclassError, RuntimeError):
    """A dataset could not be loaded; the message says which file and what to do."""
