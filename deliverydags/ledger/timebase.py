"""Exact time arithmetic: sends carry ``sent_ms`` (float ms), receipts ``recv_ns`` (int ns).

A float product ``sent_ms * 1e6`` is off by up to ~128 ns at today's epoch, enough to
move a receipt that arrived exactly at a deadline to the wrong side of it. The value a
send line means is the decimal it spells (JavaScript's ``JSON.stringify`` writes the
shortest decimal that reads back as the same double, as Python's ``repr`` does), so the
sent time in ns is ``floor(decimal * 10**6)``: a receipt is within a deadline of ``D`` ns
iff ``recv_ns - sent_ns <= D``, exactly, even when the decimal has sub-ns digits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from functools import lru_cache

import numpy as np

# Binades [2**e, 2**(e+1)) ms handled by table (a binade's doubles have 2**(52-e)
# possible fractions of a ms): e=40 holds 2004-2039, e=41 up to 2109.
_TABLE_BINADES = range(40, 52)
# Candidate granularities in ns for other magnitudes (tests with small sent_ms).
_STEPS_NS = (1e6, 1e5, 1e4, 1e3, 1e2, 1e1, 1.0)
_EPS_NS = 1e-6  # float error margin of the generic path (actual error < 1e-9 ns)


def ms_to_ns_exact(value: float) -> int:
    """floor(shortest decimal of ``value`` * 10**6): the slow, obviously exact path."""
    return math.floor(Decimal(repr(float(value))) * 1_000_000)


@lru_cache(maxsize=16)
def _fraction_table(e: int) -> np.ndarray:
    """ns offset within the ms for each fraction of a ms a double in binade ``e`` can hold.

    Within one binade the shortest decimal of a double depends only on its fraction of
    a ms (the integer part and the ulp are shared), so one exact ``repr`` per fraction
    serves every value of the binade.
    """
    ulp = 2.0 ** (e - 52)
    base = 2.0**e
    return np.array(
        [ms_to_ns_exact(base + f * ulp) - int(base) * 1_000_000 for f in range(2 ** (52 - e))],
        dtype=np.int64,
    )


_BLOCK = 1 << 20  # bounds the temporaries at 10 M messages


def sent_ns(sent_ms: np.ndarray) -> np.ndarray:
    """Vectorised :func:`ms_to_ns_exact` for finite doubles (|x| < 9e12); int64 ns."""
    x = np.asarray(sent_ms, dtype=np.float64)
    out = np.empty(x.shape, dtype=np.int64)
    for start in range(0, x.size, _BLOCK):
        out[start : start + _BLOCK] = _block_ns(x[start : start + _BLOCK])
    return out


def _block_ns(x: np.ndarray) -> np.ndarray:
    out = np.empty(x.shape, dtype=np.int64)
    if x.size == 0:
        return out
    todo = np.ones(x.shape, dtype=bool)
    lo, hi = float(x.min()), float(x.max())
    for e in _TABLE_BINADES:
        if hi < 2.0**e or lo >= 2.0 ** (e + 1):
            continue
        if 2.0**e <= lo and hi < 2.0 ** (e + 1):
            sel = slice(None)  # the usual case: one binade, no masks
        else:
            sel = (x >= 2.0**e) & (x < 2.0 ** (e + 1))
        # x in ulps is an exact integer below 2**53; its low bits are the fraction of a ms.
        ulps = (x[sel] * 2.0 ** (52 - e)).astype(np.int64)
        whole_ns = (ulps >> (52 - e)) * 1_000_000
        out[sel] = whole_ns + _fraction_table(e)[ulps & ((1 << (52 - e)) - 1)]
        todo[sel] = False
    rest = np.flatnonzero(todo)
    if rest.size:
        out[rest] = _generic_ns(x[rest])
    return out


def _generic_ns(x: np.ndarray) -> np.ndarray:
    """The coarsest multiple of 10**k ns that reads back as x; exact path when in doubt."""
    whole = np.floor(x)
    frac_ns = (x - whole) * 1e6  # x - floor(x) is exact; the product errs < 1e-9 ns
    half_ulp_ns = np.spacing(np.abs(x)) * 5e5
    out = np.zeros(x.shape, dtype=np.int64)
    todo = np.ones(x.shape, dtype=bool)
    for step in _STEPS_NS:
        cand = np.rint(frac_ns / step) * step
        dist = np.abs(cand - frac_ns)
        # Too close to call in floats: at an interval edge, or halfway between two
        # candidates that may both read back as x.
        edge = np.abs(dist - half_ulp_ns) <= _EPS_NS
        tie = (np.abs(dist - step / 2) <= _EPS_NS) & (dist < half_ulp_ns + _EPS_NS)
        unsure = todo & (edge | tie)
        fits = todo & ~unsure & (dist < half_ulp_ns)
        out[fits] = whole[fits].astype(np.int64) * 1_000_000 + cand[fits].astype(np.int64)
        out[unsure] = [ms_to_ns_exact(v) for v in x[unsure]]
        todo &= ~(fits | unsure)
        if not todo.any():
            return out
    # More than six decimals (a sub-ns send time): done exactly one by one.
    rest = np.flatnonzero(todo)
    out[rest] = [ms_to_ns_exact(v) for v in x[rest]]
    return out


def deadlines_ns(deadlines_s: Sequence[float]) -> np.ndarray:
    """Deadlines in whole ns (floor: a receipt's ns time is within ``floor(D)`` iff ``D``)."""
    return np.array(
        [math.floor(Decimal(repr(float(d))) * 1_000_000_000) for d in deadlines_s],
        dtype=np.int64,
    )
