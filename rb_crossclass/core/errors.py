"""The base of every error rb-crossclass reports to a user as one clear line."""


class RBCrossclassError(Exception):
    """Raised for bad input or an unusable file/model; the message names it and the fix."""
