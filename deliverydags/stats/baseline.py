"""Per-metric baseline over a week of nights (or a pinned set of nights).

Standard deviation is the *sample* standard deviation (ddof=1, as ``statistics.stdev``
and ``numpy.std(ddof=1)``): the week is a sample of the service's nights, not the whole
population. With fewer than 2 values it is ``None``, not 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np

from deliverydags.stats.history import NightLike, as_night
from deliverydags.stats.metrics import METRIC_NAMES, Better, better

DDOF = 1


@dataclass(frozen=True)
class MetricBaseline:
    metric: str
    better: Better
    n: int
    mean: float | None
    std: float | None
    median: float | None
    nights_without_value: tuple[str, ...]  # nights with a result but no value for this metric


@dataclass(frozen=True)
class Baseline:
    nights: tuple[str, ...]  # the nights asked for, oldest first
    present: tuple[str, ...]  # of those, nights that have a result
    missing: tuple[str, ...]  # of those, nights without any result
    pinned: bool
    metrics: dict[str, MetricBaseline] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "nights": list(self.nights),
            "present": list(self.present),
            "missing": list(self.missing),
            "pinned": self.pinned,
            "metrics": {
                name: {
                    "better": m.better,
                    "n": m.n,
                    "mean": m.mean,
                    "std": m.std,
                    "median": m.median,
                    "nights_without_value": list(m.nights_without_value),
                }
                for name, m in self.metrics.items()
            },
        }


def week_before(night: NightLike, days: int = 7) -> list[str]:
    """The ``days`` nights before ``night`` (not including it), oldest first."""
    end = as_night(night)
    return [(end - timedelta(days=i)).isoformat() for i in range(days, 0, -1)]


def metric_baseline(metric: str, values: Iterable[float], direction: Better) -> MetricBaseline:
    arr = np.asarray([float(v) for v in values], dtype=np.float64)
    n = int(arr.size)
    return MetricBaseline(
        metric=metric,
        better=direction,
        n=n,
        mean=float(arr.mean()) if n else None,
        std=float(arr.std(ddof=DDOF)) if n > DDOF else None,
        median=float(np.median(arr)) if n else None,
        nights_without_value=(),
    )


def compute_baseline(
    results: Mapping[NightLike, Mapping[str, float | None]],
    nights: Iterable[NightLike],
    metrics: Iterable[str] = METRIC_NAMES,
    *,
    pinned: bool = False,
    better_by_metric: Mapping[str, Better] | None = None,
) -> Baseline:
    """Baseline of ``metrics`` over exactly ``nights``, from ``{night: {metric: value}}``.

    A night with no entry in ``results`` is listed in ``missing``; a night whose value for
    a metric is None/NaN is listed in that metric's ``nights_without_value``. Neither
    counts towards ``n``.
    """
    asked = sorted({as_night(n) for n in nights})
    by_night = {as_night(k): v for k, v in results.items()}
    present = [n for n in asked if n in by_night]
    missing = [n for n in asked if n not in by_night]
    lookup = better_by_metric or {}
    out: dict[str, MetricBaseline] = {}
    for metric in metrics:
        values, without = [], []
        for night in present:
            value = by_night[night].get(metric)
            if value is None or not math.isfinite(float(value)):
                without.append(night.isoformat())
            else:
                values.append(float(value))
        direction = lookup[metric] if metric in lookup else better(metric)
        base = metric_baseline(metric, values, direction)
        out[metric] = MetricBaseline(**{**base.__dict__, "nights_without_value": tuple(without)})
    return Baseline(
        nights=tuple(n.isoformat() for n in asked),
        present=tuple(n.isoformat() for n in present),
        missing=tuple(n.isoformat() for n in missing),
        pinned=pinned,
        metrics=out,
    )


def rolling_baseline(
    results: Mapping[NightLike, Mapping[str, float | None]],
    night: NightLike,
    metrics: Iterable[str] = METRIC_NAMES,
    days: int = 7,
    **kwargs,
) -> Baseline:
    """Baseline of the ``days`` calendar nights before ``night``."""
    return compute_baseline(results, week_before(night, days), metrics, **kwargs)


def pinned_baseline(
    results: Mapping[NightLike, Mapping[str, float | None]],
    nights: Iterable[NightLike],
    metrics: Iterable[str] = METRIC_NAMES,
    **kwargs,
) -> Baseline:
    """Baseline frozen on a chosen set of nights (e.g. the last release everyone trusts)."""
    return compute_baseline(results, nights, metrics, pinned=True, **kwargs)


def relative_change(value: float, reference: float, direction: Better) -> float:
    """How much worse ``value`` is than ``reference``: 0.12 = 12 % worse, negative = better.

    Relative to ``abs(reference)``. A zero reference has no relative scale: equal is 0,
    any move the bad way is ``+inf`` and the good way ``-inf`` (so a count going from 0
    to 1 lost message is always a breach, whatever the threshold).
    """
    sign = 1.0 if direction == "lower" else -1.0
    delta = sign * (value - reference)
    if reference == 0:
        return 0.0 if delta == 0 else math.copysign(math.inf, delta)
    return delta / abs(reference)
