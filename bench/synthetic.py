"""Seeded synthetic nightly metrics with known steps: for tests, the benchmark and demos.

Noise per metric is shaped like the real thing: delivery rate just under 1 with small
Gaussian noise, latencies lognormal, counts Poisson, throughput a few per mille. Outliers
are single bad nights (a latency spike, a burst of losses) that no detector should call
a change. A step multiplies the level by ``1 + step`` the bad way from its night on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from deliverydags.stats.history import History
from deliverydags.stats.metrics import METRIC_NAMES, Better, better

# (level, noise) per metric; noise is a sd (normal), a log-sd (lognormal) or None (Poisson).
_SHAPE: dict[str, tuple[str, float, float]] = {
    "delivery_rate": ("normal", 0.999, 0.0003),
    "counts.lost": ("poisson", 3.0, 0.0),
    "counts.duplicates": ("poisson", 40.0, 0.0),
    "counts.out_of_order": ("poisson", 12.0, 0.0),
    "counts.late": ("poisson", 20.0, 0.0),
    "latency_ms.p50": ("lognormal", 40.0, 0.02),
    "latency_ms.p95": ("lognormal", 120.0, 0.03),
    "latency_ms.p99": ("lognormal", 250.0, 0.05),
    "error_rate": ("lognormal", 0.002, 0.05),
    "throughput": ("normal", 500.0, 2.5),
    "knee": ("normal", 5000.0, 25.0),
    "linear_scaling": ("normal", 0.98, 0.003),
}


@dataclass(frozen=True)
class Truth:
    metric: str
    step_index: int | None  # first night at the new level
    step: float  # relative, worse positive


def series(
    rng: np.random.Generator,
    metric: str,
    nights: int,
    step_index: int | None = None,
    step: float = 0.0,
    outlier_rate: float = 0.01,
    outlier_factor: float = 1.6,
) -> np.ndarray:
    """One metric's nightly values (``metric`` is a standard name, e.g. latency_ms.p95)."""
    kind, level, noise = _SHAPE[metric]
    worse_up = better(metric) == "lower"
    levels = np.full(nights, level)
    if step_index is not None:
        levels[step_index:] *= 1 + step if worse_up else 1 - step
    if kind == "normal":
        out = levels + rng.normal(0.0, noise, nights)
    elif kind == "lognormal":
        out = levels * rng.lognormal(0.0, noise, nights)
    else:
        out = rng.poisson(levels).astype(np.float64)
    spikes = rng.random(nights) < outlier_rate
    if worse_up:
        out[spikes] *= outlier_factor
    else:
        out[spikes] = out[spikes] * (1 - (outlier_factor - 1) / 10)
    return np.minimum(out, 1.0) if metric == "delivery_rate" else out


def history(
    seed: int,
    nights: int = 365,
    scenarios: int = 10,
    step_fraction: float = 0.2,
    step_range: tuple[float, float] = (0.10, 0.30),
    outlier_rate: float = 0.01,
    first: date = date(2025, 1, 1),
) -> tuple[History, list[Truth]]:
    """``scenarios`` x the 10 standard metrics (named ``s3:latency_ms.p95``), some stepped."""
    rng = np.random.default_rng(seed)
    names: list[str] = []
    directions: dict[str, Better] = {}
    columns, truths = [], []
    for s in range(scenarios):
        for metric in METRIC_NAMES:
            name = f"s{s}:{metric}"
            stepped = rng.random() < step_fraction
            at = int(rng.integers(30, nights - 10)) if stepped else None
            size = float(rng.uniform(*step_range)) if stepped else 0.0
            columns.append(series(rng, metric, nights, at, size, outlier_rate))
            truths.append(Truth(name, at, size))
            names.append(name)
            directions[name] = better(metric)
    days = [first + timedelta(days=i) for i in range(nights)]
    return History.from_array(days, names, np.column_stack(columns), directions), truths
