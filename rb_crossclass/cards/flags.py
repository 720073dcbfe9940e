"""Per-point outcomes on a card, packed: the paired tests between models need them.

A card's ``evaluation.point_flags`` holds, for the first ``n_examples`` test points, whether each
point was classified correctly on clean inputs (``clean``) and under the attack (``robust``). Each
is a lowercase hex string: point ``k`` is bit ``k`` counted from the most significant bit of the
first digit (4 points per digit, the last digit padded with zeros), so 10,000 points take 2,500
characters.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["pack_flags", "unpack_flags"]


def pack_flags(flags: Iterable[bool] | str) -> str:
    """``[True, False, True, True, True]`` (or ``"10111"``) → ``"b8"``."""
    bits = "".join("1" if f in (True, 1, "1") else "0" for f in flags)
    if not bits:
        return ""
    bits += "0" * (-len(bits) % 4)
    return "".join(f"{int(bits[i:i + 4], 2):x}" for i in range(0, len(bits), 4))


def unpack_flags(packed: str, n: int) -> list[bool]:
    """The first ``n`` flags of a packed string; ``ValueError`` when it holds fewer than ``n``
    points or characters other than hex digits."""
    if n < 0 or len(packed) * 4 < n or len(packed) > (n + 3) // 4:
        raise ValueError(f"packed flags of {len(packed)} hex digits do not hold exactly {n} points")
    try:
        bits = "".join(f"{int(c, 16):04b}" for c in packed)
    except ValueError as err:
        raise ValueError("packed flags must be hex digits") from err
    return [b == "1" for b in bits[:n]]
