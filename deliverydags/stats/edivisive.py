"""E-divisive change points (Matteson & James 2014) with a permutation test, in numpy.

Written here because the maintained implementations cannot sit in this environment:
MongoDB's ``signal-processing-algorithms`` pins numpy < 2 and pulls in gevent, and
Apache Otava pins other numpy/scipy versions and a cloud SDK stack.

The divergence between ``X = x[a:tau]`` and ``Y = x[tau:b]`` is the energy statistic with
alpha = 1 (U-statistics, as in the paper and in Otava's calculator)::

    Q(tau) = n m / (n + m) * ( 2/(n m) sum|X_i - Y_j|
                               - 1/C(n,2) sum_{i<k}|X_i - X_k|
                               - 1/C(m,2) sum_{j<k}|Y_j - Y_k| )

maximised over tau with the right end fixed at the cluster's end (as MongoDB's
implementation, which Hunter used): one O(n^2) pass per cluster instead of O(n^2) per
(tau, kappa) pair. Change points are added one at a time, each only if a permutation
test finds it significant: the values inside every current cluster are shuffled, the best
Q over all clusters recomputed, and ``p = (1 + #{permuted >= observed}) / (1 + R)``.

The permutations are the whole cost, so they are bounded (``permutations``), batched
(one numpy pass for a batch) and stopped as soon as the outcome is decided: once more
permuted maxima have reached the observed one than significance allows, the remaining
permutations cannot change the answer. On a series without a change that happens within
the first few permutations; only a real change pays for all of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

# Under no change the observed maximum is as likely as any permuted one to be the largest,
# so small doubling batches settle most tests after a handful of permutations.
_FIRST_BATCH = 2


@dataclass(frozen=True)
class EDivisiveConfig:
    max_pvalue: float = 0.01
    permutations: int = 99
    min_size: int = 3  # nights on each side of a change
    max_changes: int = 32

    def __post_init__(self) -> None:
        if self.min_size < 2:
            raise ValueError("min_size must be at least 2 (the statistic needs pairs)")
        if self.permutations < 1:
            raise ValueError("permutations must be at least 1")
        if (1 / (self.permutations + 1)) > self.max_pvalue:
            raise ValueError(
                f"{self.permutations} permutations cannot reach p <= {self.max_pvalue}"
            )


@dataclass(frozen=True)
class SplitPoint:
    index: int  # first position of the new segment
    qhat: float
    p_value: float


class _Ranked:
    """A segment by rank: permutations shuffle ranks, values are looked up per rank."""

    def __init__(self, x: np.ndarray) -> None:
        order = np.argsort(x, kind="stable")
        self.size = x.size
        self.rank = np.empty(x.size, dtype=np.int64)
        self.rank[order] = np.arange(x.size)
        self.values = x[order]  # ascending
        n, v = x.size, self.values
        cum = np.cumsum(v)
        i = np.arange(n)
        # sum_s |x_s - x_t| for the value of each rank, in O(n log n).
        self.row_sums = v * i - (cum - v) + (cum[-1] - cum) - v * (n - 1 - i)


def _lower_sums(ranks: np.ndarray, values: np.ndarray) -> np.ndarray:
    """L[r, t] = sum_{s<t} |y_s - y_t| for rows y = values[ranks[r]] (a batch of orders).

    With c = #{s<t: rank_s < rank_t} and S the sum of those y_s,
    L = y_t (2c - t) + sum_{s<t} y_s - 2S. Counting (s, t) pairs directly is O(n^2) per
    row; square-root decomposition makes it O(n^1.5): cut time and rank into blocks of
    b ~ sqrt(n). A pair is then either in the same time block (compared directly), or in
    the same rank block (compared directly, grouped by rank), or in an earlier time block
    *and* a lower rank block (read from a 2-D cumulative count over the block grid).
    Padding elements get the last times and the highest ranks, so they never count.
    """
    rows, n = ranks.shape
    b = max(2, math.isqrt(n))
    nb = -(-n // b)
    size = nb * b
    rk = np.concatenate([ranks, np.broadcast_to(np.arange(n, size), (rows, size - n))], axis=1)
    vals = np.concatenate([values, np.zeros(size - n)])
    y = vals[rk]
    earlier = np.tri(b, b, -1, dtype=bool)

    by_time = rk.reshape(rows, nb, b)
    pair = (by_time[..., None, :] < by_time[..., :, None]) & earlier
    count = pair.sum(-1).reshape(rows, size).astype(np.float64)
    below = np.einsum("...ts,...s->...t", pair, y.reshape(rows, nb, b)).reshape(rows, size)

    time_of = np.empty_like(rk)
    np.put_along_axis(time_of, rk, np.broadcast_to(np.arange(size), (rows, size)), axis=1)
    block_by_rank = (time_of // b).reshape(rows, nb, b)
    pair = (block_by_rank[..., None, :] < block_by_rank[..., :, None]) & earlier
    count += np.take_along_axis(pair.sum(-1).reshape(rows, size), rk, axis=1)
    weighted = np.einsum("rkts,ks->rkt", pair, vals.reshape(nb, b)).reshape(rows, size)
    below += np.take_along_axis(weighted, rk, axis=1)

    time_block = np.arange(size) // b
    rank_block = rk // b
    cell = ((np.arange(rows)[:, None] * nb + time_block) * nb + rank_block).ravel()
    for grid, out in (
        (np.bincount(cell, minlength=rows * nb * nb), count),
        (np.bincount(cell, weights=y.ravel(), minlength=rows * nb * nb), below),
    ):
        cum = np.zeros((rows, nb + 1, nb + 1))
        cum[:, 1:, 1:] = grid.reshape(rows, nb, nb).cumsum(1).cumsum(2)
        out += cum[np.arange(rows)[:, None], time_block, rank_block]

    y, count, below = y[:, :n], count[:, :n], below[:, :n]
    prefix = np.cumsum(y, axis=1) - y
    return y * (2 * count - np.arange(n)) + prefix - 2 * below


def _qhat(seg: _Ranked, ranks: np.ndarray, min_size: int) -> np.ndarray:
    """Q(tau), tau = min_size .. n - min_size, for each row of ``ranks`` (right end = n)."""
    n = seg.size
    lower = _lower_sums(ranks, seg.values)
    within_x = np.cumsum(lower, axis=1)  # [:, tau-1]: pairs inside y[:tau]
    upper = seg.row_sums[ranks] - lower  # sum_{s>t} |y_s - y_t|
    within_y = np.cumsum(upper[:, ::-1], axis=1)[:, ::-1]  # [:, tau]: pairs inside y[tau:]
    total = within_x[:, -1:]
    tau = np.arange(min_size, n - min_size + 1)
    m = n - tau
    wx = within_x[:, tau - 1]
    wy = within_y[:, tau]
    between = total - wx - wy
    return 2 * between / n - 2 * m * wx / (n * (tau - 1)) - 2 * tau * wy / (n * (m - 1))


def qhat_profile(x: np.ndarray, min_size: int = 2) -> np.ndarray:
    """Q(tau) of a whole series, indexed by tau (NaN where a side is under ``min_size``)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.full(x.size + 1, np.nan)
    if x.size >= 2 * min_size:
        seg = _Ranked(x)
        out[min_size : x.size - min_size + 1] = _qhat(seg, seg.rank[None, :], min_size)[0]
    return out


def _best_split(x: np.ndarray, min_size: int) -> tuple[int, float]:
    seg = _Ranked(x)
    q = _qhat(seg, seg.rank[None, :], min_size)[0]
    i = int(np.argmax(q))
    return i + min_size, float(q[i])


def _permuted_maxima(
    segments: list[_Ranked], count: int, min_size: int, rng: np.random.Generator
) -> np.ndarray:
    best = np.full(count, -np.inf)
    for seg in segments:
        if seg.size < 2 * min_size:
            continue
        ranks = rng.permuted(np.broadcast_to(seg.rank, (count, seg.size)), axis=1)
        best = np.maximum(best, _qhat(seg, ranks, min_size).max(axis=1))
    return best


def _significance(
    observed: float,
    series: list[np.ndarray],
    config: EDivisiveConfig,
    rng: np.random.Generator,
) -> float | None:
    """Permutation p-value of ``observed``, or None once it cannot reach ``max_pvalue``."""
    allowed = math.floor(config.max_pvalue * (config.permutations + 1) + 1e-9) - 1
    segments = [_Ranked(s) for s in series]
    exceed = done = 0
    batch = _FIRST_BATCH
    while done < config.permutations:
        count = min(batch, config.permutations - done)
        maxima = _permuted_maxima(segments, count, config.min_size, rng)
        exceed += int(np.count_nonzero(maxima >= observed))
        done += count
        batch *= 2
        if exceed > allowed:
            return None
    return (exceed + 1) / (config.permutations + 1)


def e_divisive(
    x: np.ndarray, config: EDivisiveConfig = EDivisiveConfig(), seed: int | np.random.Generator = 0
) -> list[SplitPoint]:
    """Significant change points of a 1-D series without gaps, in index order."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or not np.all(np.isfinite(x)):
        raise ValueError("x must be a 1-D series of finite values")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    bounds = [0, x.size]
    found: list[SplitPoint] = []
    memo: dict[tuple[int, int], tuple[int, float]] = {}
    while len(found) < config.max_changes:
        candidates = []
        for a, b in pairwise(bounds):
            if b - a >= 2 * config.min_size:
                if (a, b) not in memo:
                    tau, q = _best_split(x[a:b], config.min_size)
                    memo[(a, b)] = (a + tau, q)
                candidates.append(memo[(a, b)])
        if not candidates:
            break
        index, q = max(candidates, key=lambda c: c[1])
        segments = [x[a:b] for a, b in pairwise(bounds)]
        p_value = _significance(q, segments, config, rng)
        if p_value is None:
            break
        found.append(SplitPoint(index, q, p_value))
        bounds = sorted([*bounds, index])
    return sorted(found, key=lambda s: s.index)
