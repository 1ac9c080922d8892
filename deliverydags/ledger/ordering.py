"""Order questions in numpy, using scatters and SIMD sorts of packed keys (no argsort)."""

from __future__ import annotations

import numpy as np


def arrival_order(n: np.ndarray) -> np.ndarray | None:
    """Indices that put the receipts in arrival order; None when ``n`` repeats.

    The join hands the receipts back in a few long runs of ascending ``n``, which numpy's
    stable sort (timsort for 64-bit keys) merges in near-linear time.
    """
    order = np.argsort(n, kind="stable")
    ordered = n[order]
    return None if np.any(ordered[1:] == ordered[:-1]) else order


def out_of_order(
    pos: np.ndarray, msgs: np.ndarray, stream: np.ndarray, seq: np.ndarray, first: np.ndarray
) -> np.ndarray:
    """Messages whose first delivered receipt came after a delivered receipt (any,
    duplicates included) of a higher ``seq`` on the same stream, ordered by that first
    delivered receipt.

    ``pos``/``msgs``: arrival position and message of every delivered receipt of a sent
    id, in arrival order; ``first``: per message, the position of its first one.

    Sorted by (stream, arrival), a running max of seq says whether an earlier receipt of
    the stream had a higher one. Stream, position, a first-receipt flag and seq are
    packed into one int64 so that numpy's SIMD sort carries them all; a stream's values
    are then ``stream << bits | seq``, so one running max never carries across streams.
    """
    if msgs.size == 0:
        return np.empty(0, dtype=np.int64)
    groups = stream[msgs]
    values = seq[msgs]
    low = int(values.min())
    v_bits = (int(values.max()) - low).bit_length()
    p_bits = int(pos.max()).bit_length()
    g_bits = max(int(groups.max()), 0).bit_length()
    if g_bits + p_bits + v_bits + 1 > 63:
        return _out_of_order_slow(pos, msgs, groups.astype(np.int64), values, first)
    # Bits, high to low: stream | arrival position | seq - low | first-delivered flag.
    # The (unique) position decides the order within a stream; the bits below it ride.
    v_shift, p_shift = 1, 1 + v_bits
    g_shift = p_shift + p_bits
    packed = groups.astype(np.int64)
    packed <<= g_shift
    del groups
    scratch = np.left_shift(pos, p_shift)
    packed |= scratch
    np.subtract(values, np.int64(low), out=scratch)  # in int64: values may be narrow
    scratch <<= v_shift
    packed |= scratch
    del values
    packed |= first[msgs] == pos
    packed.sort()
    # (stream, seq): the position and flag bits cleared. Streams ascend, so a running
    # max never carries into the next stream.
    np.bitwise_and(packed, ~np.int64(((1 << p_bits) - 1) << p_shift | 1), out=scratch)
    behind = np.maximum.accumulate(scratch) > scratch
    del scratch
    hit = packed[behind & (packed & 1).astype(bool)]
    hit_pos = np.sort((hit >> p_shift) & ((1 << p_bits) - 1))
    return msgs[np.searchsorted(pos, hit_pos)]


def _out_of_order_slow(
    pos: np.ndarray, msgs: np.ndarray, groups: np.ndarray, values: np.ndarray, first: np.ndarray
) -> np.ndarray:
    """Same answer with stable argsorts and seq ranks, for values too wide to pack."""
    order = np.argsort(groups, kind="stable")  # pos ascends already: arrival order kept
    values = values.astype(np.int64)
    groups, values, p, m = groups[order], values[order], pos[order], msgs[order]
    ranks = np.unique(values, return_inverse=True)[1].ravel().astype(np.int64)
    key = groups * (int(ranks.max()) + 1) + ranks
    behind = np.maximum.accumulate(key) > key
    hit = behind & (first[m] == p)
    return m[hit][np.argsort(p[hit], kind="stable")]
