"""Order questions in numpy without argsort (slow) where a SIMD sort or a scatter does."""

from __future__ import annotations

import numpy as np

_KEY_BITS = 40  # arrival keys below 2**40 pack with a group code below 2**23 in an int64


def arrival_keys(n: np.ndarray) -> np.ndarray | None:
    """0-based int64 keys in the order of ``n``; None when ``n`` repeats (order undefined).

    The collector numbers receipts 0, 1, 2, ..., so the usual keys are ``n - min(n)``,
    checked unique with a scatter; sparse numbers are replaced by their ranks.
    """
    if n.size == 0:
        return np.empty(0, dtype=np.int64)
    lo = int(n.min())
    span = int(n.max()) - lo + 1
    if span <= 4 * n.size + 1024:
        keys = n - lo
        seen = np.zeros(span, dtype=bool)
        seen[keys] = True
        return keys if np.count_nonzero(seen) == n.size else None
    ordered = np.sort(n)
    if np.any(ordered[1:] == ordered[:-1]):
        return None
    return np.searchsorted(ordered, n).astype(np.int64)


def by_key(keys: np.ndarray, values: np.ndarray, fill: int) -> np.ndarray:
    """Lookup table ``values`` indexed by key (keys are unique and dense)."""
    table = np.full(int(keys.max()) + 1 if keys.size else 0, fill, dtype=values.dtype)
    table[keys] = values
    return table


def out_of_order(
    keys: np.ndarray,
    msgs: np.ndarray,
    msg_at: np.ndarray,
    stream: np.ndarray,
    seq: np.ndarray,
    first_delivered: np.ndarray,
) -> np.ndarray:
    """Messages whose first delivered receipt came after a delivered receipt (any,
    duplicates included) of a higher ``seq`` on the same stream, in the order of that
    first delivered receipt.

    ``keys``/``msgs``: every delivered receipt of a sent id (arrival key, message);
    ``msg_at``: message by arrival key; ``first_delivered``: per message, the key of its
    first delivered receipt.

    Sorted by (stream, arrival), a running max of seq tells whether an earlier receipt of
    the stream had a higher one. Each stream's seq values are shifted to a disjoint,
    increasing range, so one global ``maximum.accumulate`` never carries across streams.
    """
    if msgs.size == 0:
        return np.empty(0, dtype=np.int64)
    groups = stream[msgs]
    if int(groups.max()) < 2**23 and int(keys.max()) < 2**_KEY_BITS:
        packed = (groups.astype(np.int64) << _KEY_BITS) | keys
        packed.sort()  # SIMD sort; the pair is unique, so no stability needed
        groups = (packed >> _KEY_BITS).astype(np.int32)
        keys_s = packed & ((1 << _KEY_BITS) - 1)
        del packed
    else:  # huge numbers of streams or receipts: stable sorts
        order = np.argsort(keys, kind="stable")
        order = order[np.argsort(groups[order], kind="stable")]
        groups, keys_s = groups[order], keys[order]
    msgs_s = msg_at[keys_s]
    values = seq[msgs_s]
    starts = np.concatenate(([0], np.flatnonzero(groups[1:] != groups[:-1]) + 1))
    lows = np.minimum.reduceat(values, starts)
    highs = np.maximum.reduceat(values, starts)
    if float(np.sum(highs.astype(np.float64) - lows.astype(np.float64) + 1.0)) >= 2.0**62:
        # seq values too far apart to shift within int64: their ranks order the same
        values = np.unique(values, return_inverse=True)[1].astype(np.int64).ravel()
        lows = np.minimum.reduceat(values, starts)
        highs = np.maximum.reduceat(values, starts)
    bases = np.concatenate(([0], np.cumsum(highs - lows + 1)[:-1])) - lows
    shifted = values + np.repeat(bases, np.diff(np.append(starts, values.size)))
    behind = np.maximum.accumulate(shifted) > shifted
    hit = behind & (keys_s == first_delivered[msgs_s])
    late_msgs, late_keys = msgs_s[hit], keys_s[hit]
    return late_msgs[np.argsort(late_keys, kind="stable")]
