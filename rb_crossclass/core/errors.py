"""The base of every error rb-crossclass reports to a user as one clear line."""


class RBCrossclassError(Exception):
    """Raised for bad input or an unusable file/model; the message names it and the fix."""


# Sentences of library messages (torch's above all) that advise loosening a safety rule: unpickling
# with weights_only=False, allow-listing globals. We never show them: rb-crossclass never unpickles.
_UNSAFE_ADVICE = ("weights_only", "safe_globals", "arbitrary code", "trust", "please file an issue",
                  "check the documentation of torch.load", "this file can still be loaded",
                  "you have two options", "recommended steps")


def without_unsafe_advice(text: str) -> str:
    """``text`` (an error message) with every sentence or line that advises unpickling removed, and
    terminal colour codes dropped; what is left is the actual problem (e.g. "Unsupported operand
    239"). Returns a placeholder when nothing else is left."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    kept = []
    for part in re.split(r"(?<=[.:!?])\s+|\n+", text):
        low = part.lower()
        if part.strip() and not any(word in low for word in _UNSAFE_ADVICE):
            kept.append(part.strip())
    out = " ".join(kept).replace("WeightsUnpickler error:", "unpickler error:")
    return out or "the file holds something other than tensors"
