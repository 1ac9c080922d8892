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
    groups = stream[msgs].astype(np.int64)
    values = seq[msgs].astype(np.int64)
    low = int(values.min())
    v_bits = max(int(values.max()) - low, 0).bit_length()
    p_bits = int(pos.max()).bit_length()
    g_bits = max(int(groups.max()), 0).bit_length()
    if g_bits + p_bits + v_bits + 1 > 63:
        return _out_of_order_slow(pos, msgs, groups, values, first)
    packed = groups << (p_bits + 1 + v_bits)
    del groups
    packed |= pos << (1 + v_bits)
    packed |= (first[msgs] == pos).astype(np.int64) << v_bits
    packed |= values - low
    del values
    packed.sort()
    v_mask = (1 << v_bits) - 1
    # (stream, seq) in one number; streams ascend, so the max never crosses into one.
    key = ((packed >> (p_bits + 1 + v_bits)) << v_bits) | (packed & v_mask)
    behind = np.maximum.accumulate(key) > key
    del key
    hit = behind & ((packed >> v_bits) & 1).astype(bool)
    hit_pos = np.sort((packed[hit] >> (1 + v_bits)) & ((1 << p_bits) - 1))
    return msgs[np.searchsorted(pos, hit_pos)]


def _out_of_order_slow(
    pos: np.ndarray, msgs: np.ndarray, groups: np.ndarray, values: np.ndarray, first: np.ndarray
) -> np.ndarray:
    """Same answer with stable argsorts and seq ranks, for values too wide to pack."""
    order = np.argsort(groups, kind="stable")  # pos ascends already: arrival order kept
    groups, values, p, m = groups[order], values[order], pos[order], msgs[order]
    ranks = np.unique(values, return_inverse=True)[1].ravel().astype(np.int64)
    key = groups * (int(ranks.max()) + 1) + ranks
    behind = np.maximum.accumulate(key) > key
    hit = behind & (first[m] == p)
    return m[hit][np.argsort(p[hit], kind="stable")]
