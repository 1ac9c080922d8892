"""Nights x metrics as one float matrix, so detectors work on whole columns at once.

Rows are consecutive UTC calendar nights (a partition key is ``YYYY-MM-DD``); a night
without a result is a row of NaN, so gaps stay visible instead of silently shifting the
next night into the missing one's place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise

import numpy as np

from deliverydags.stats.metrics import METRIC_NAMES, Better, better

NightLike = str | date


def as_night(value: NightLike) -> date:
    """A night from a partition key (``2025-01-31``) or a ``date``."""
    if isinstance(value, date):
        return value
    return date.fromisoformat(value)


def night_range(first: NightLike, last: NightLike) -> list[date]:
    start, end = as_night(first), as_night(last)
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


@dataclass(frozen=True)
class History:
    nights: tuple[date, ...]
    metrics: tuple[str, ...]
    better: tuple[Better, ...]
    values: np.ndarray  # float64, shape (len(nights), len(metrics)); NaN = no value
    has_result: np.ndarray  # bool, shape (len(nights),): a result exists for the night

    @classmethod
    def from_nights(
        cls,
        per_night: Mapping[NightLike, Mapping[str, float | None]],
        metrics: Sequence[str] = METRIC_NAMES,
        *,
        better_by_metric: Mapping[str, Better] | None = None,
        first: NightLike | None = None,
        last: NightLike | None = None,
    ) -> History:
        """Build from ``{night: {metric: value}}`` over every calendar night first..last.

        ``first``/``last`` default to the earliest/latest night given. Directions come
        from ``better_by_metric`` or, for the standard metric names, from ``metrics``.
        """
        by_night = {as_night(k): v for k, v in per_night.items()}
        if not by_night and (first is None or last is None):
            raise ValueError("no nights given and no first/last to span")
        nights = night_range(
            first if first is not None else min(by_night),
            last if last is not None else max(by_night),
        )
        values = np.full((len(nights), len(metrics)), np.nan)
        has_result = np.zeros(len(nights), dtype=bool)
        row = {night: i for i, night in enumerate(nights)}
        for night, record in by_night.items():
            if night not in row:
                continue
            has_result[row[night]] = True
            for j, name in enumerate(metrics):
                value = record.get(name)
                if value is not None:
                    values[row[night], j] = float(value)
        return cls.from_array(nights, metrics, values, better_by_metric, has_result)

    @classmethod
    def from_array(
        cls,
        nights: Sequence[NightLike],
        metrics: Sequence[str],
        values: np.ndarray,
        better_by_metric: Mapping[str, Better] | None = None,
        has_result: np.ndarray | None = None,
    ) -> History:
        nights_t = tuple(as_night(n) for n in nights)
        if any((b - a).days != 1 for a, b in pairwise(nights_t)):
            raise ValueError("nights must be consecutive calendar days")
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (len(nights_t), len(metrics)):
            raise ValueError(f"values shape {values.shape} != ({len(nights_t)}, {len(metrics)})")
        lookup = better_by_metric or {}
        directions = tuple(lookup[m] if m in lookup else better(m) for m in metrics)
        if has_result is None:
            has_result = ~np.all(np.isnan(values), axis=1)
        return cls(nights_t, tuple(metrics), directions, values, np.asarray(has_result, bool))

    @property
    def worse_sign(self) -> np.ndarray:
        """+1 where a rise is worse (lower is better), -1 where a fall is worse."""
        return np.array([1.0 if b == "lower" else -1.0 for b in self.better])

    def upto(self, night: NightLike) -> History:
        """The history as it was known on ``night`` (that night included)."""
        return self.head(self.nights.index(as_night(night)) + 1)

    def head(self, end: int) -> History:
        """The first ``end`` nights."""
        return History(
            self.nights[:end], self.metrics, self.better, self.values[:end], self.has_result[:end]
        )

    def column(self, metric: str) -> np.ndarray:
        return self.values[:, self.metrics.index(metric)]
