"""K×K matrices in cards: inline JSON lists up to :data:`INLINE_MAX_K` classes, packed above it.

A card holds up to six K×K matrices (clean and adversarial, for the PGD protocol and AutoAttack's
examples). As JSON lists, K = 1,000 (ImageNet) makes a card of ~120 MB, more than a card may
hold. Above :data:`INLINE_MAX_K` classes, :func:`compact_matrices` (applied by ``write_card``)
stores each matrix as an object::

    {"encoding": "float32-zlib-base64", "layout": "upper", "k": 1000, "data": "<base64>"}

``data`` is the base64 text of the zlib-compressed little-endian float32 values, row by row: of
the upper triangle with the diagonal (``layout: upper``, for a symmetric matrix such as the
cosine matrix) or of the whole matrix (``layout: full``). ``null`` cells are NaN. About 2.5 MB
per matrix at K = 1,000, so a card stays one self-contained file. :func:`matrix_array` reads
either form.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import Any

import numpy as np

INLINE_MAX_K = 100
ENCODING = "float32-zlib-base64"
MATRIX_KEYS = ("matrix", "clean_matrix")


class MatrixFormatError(ValueError):
    """A packed matrix that cannot be decoded (the message says why)."""


def _as_float_array(rows: Any) -> np.ndarray:
    a = np.asarray([[np.nan if v is None else float(v) for v in row] for row in rows], dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise MatrixFormatError(f"not a square matrix (shape {a.shape})")
    return a


def pack_matrix(rows: Any) -> dict:
    """The packed form of a square matrix given as lists (``None`` = NaN) or an array."""
    a = np.asarray(rows, dtype=np.float64) if isinstance(rows, np.ndarray) else _as_float_array(rows)
    k = a.shape[0]
    # cos(A_i, A_j) computed as a matrix product may differ from its transpose in the last bits;
    # float32 keeps ~7 digits anyway, so such a matrix is stored as its upper triangle.
    symmetric = bool(np.allclose(a, a.T, rtol=0.0, atol=1e-6, equal_nan=True))
    values = a[np.triu_indices(k)] if symmetric else a.reshape(-1)
    raw = values.astype("<f4").tobytes()
    return {"encoding": ENCODING, "layout": "upper" if symmetric else "full", "k": k,
            "data": base64.b64encode(zlib.compress(raw, 9)).decode("ascii")}


def matrix_array(value: Any) -> np.ndarray:
    """A card's matrix (inline lists or the packed object) as a float64 ``[K,K]`` array, NaN for
    ``null``. Raises :class:`MatrixFormatError` when it cannot be read."""
    if isinstance(value, np.ndarray):
        return value.astype(np.float64)
    if isinstance(value, list):
        return _as_float_array(value)
    if not isinstance(value, dict) or value.get("encoding") != ENCODING:
        raise MatrixFormatError(f"not a matrix: expected a list of rows or an object with encoding "
                                f"{ENCODING!r}")
    k, layout = value.get("k"), value.get("layout")
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 1000 or layout not in ("upper", "full"):
        raise MatrixFormatError("packed matrix needs 'k' (1 to 1000) and 'layout' ('upper' or 'full')")
    n = k * (k + 1) // 2 if layout == "upper" else k * k
    try:
        packed = base64.b64decode(str(value.get("data", "")), validate=True)
        inflate = zlib.decompressobj()
        raw = inflate.decompress(packed, 4 * n + 1)  # bounded: a zlib bomb stops here
    except (binascii.Error, zlib.error, ValueError) as err:
        raise MatrixFormatError(f"packed matrix data cannot be decoded ({err})") from err
    if len(raw) != 4 * n or inflate.unconsumed_tail:
        raise MatrixFormatError(f"packed matrix data holds {len(raw) // 4} values, expected {n} for "
                                f"k={k}, layout {layout}")
    values = np.frombuffer(raw, dtype="<f4").astype(np.float64)
    if layout == "full":
        return values.reshape(k, k)
    out = np.empty((k, k), dtype=np.float64)
    upper = np.triu_indices(k)
    out[upper] = values
    out[(upper[1], upper[0])] = values
    return out


def compact_matrices(card: dict, inline_max_k: int = INLINE_MAX_K) -> dict:
    """``card`` with every inline K×K matrix of its cross-class blocks packed when K >
    ``inline_max_k`` (a shallow copy: the blocks changed are new dicts, the rest is shared)."""
    cc = card.get("cross_class")
    if not isinstance(cc, dict):
        return card

    def compact(block: dict) -> dict:
        out = dict(block)
        for key in MATRIX_KEYS:
            m = out.get(key)
            if isinstance(m, list) and len(m) > inline_max_k:
                out[key] = pack_matrix(m)
        return out

    new_cc = compact(cc)
    for sub in ("pgd", "autoattack"):
        if isinstance(cc.get(sub), dict):
            new_cc[sub] = compact(cc[sub])
    return {**card, "cross_class": new_cc}
