"""A week's baseline (or a pinned known-good set of nights), and tonight against it.

Tonight breaches a metric's baseline when it is worse than the baseline mean by more than
``threshold`` (relative) *and*, where the week has a spread, by more than ``sigmas``
standard deviations: a noisy count (duplicates, ~40 a night) moves 10 % on ordinary
nights, and a check that fails on ordinary nights gets ignored.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from deliverydags.history.store import ResultsStore
from deliverydags.review.nights import Metrics, stored_metrics
from deliverydags.stats.baseline import compute_baseline, relative_change
from deliverydags.stats.history import as_night
from deliverydags.stats.metrics import METRIC_NAMES

KIND = "baseline_check"


def week_nights(week_start: str, first_night: str | None = None) -> list[str]:
    """The 7 nights of the week beginning ``week_start``, none before ``first_night``."""
    start = as_night(week_start)
    nights = [(start + timedelta(days=i)).isoformat() for i in range(7)]
    return [n for n in nights if first_night is None or n >= first_night]


def baseline_of(
    store: ResultsStore, scenario: str, nights: Iterable[str], pinned: bool = False
) -> dict[str, Any]:
    """mean / std / median / n per metric over exactly ``nights``; missing nights listed."""
    per_night = stored_metrics(store, scenario)
    return compute_baseline(per_night, list(nights), METRIC_NAMES, pinned=pinned).as_dict()


def compare(
    baseline: Mapping[str, Any],
    tonight: Metrics,
    threshold: float = 0.10,
    sigmas: float = 3.0,
) -> dict[str, Any]:
    """Per metric: tonight's value, the baseline mean/std, how much worse (relative, z)."""
    rows, breaches = [], []
    for metric, base in baseline["metrics"].items():
        value, mean, std = tonight.get(metric), base["mean"], base["std"]
        row: dict[str, Any] = {"metric": metric, "value": value, "mean": mean, "std": std}
        if value is None or mean is None:
            row.update(relative=None, z=None, breach=False, judged=False)
            rows.append(row)
            continue
        rel = relative_change(value, mean, base["better"])
        sign = 1.0 if base["better"] == "lower" else -1.0
        z = sign * (value - mean) / std if std else None
        beyond_spread = z is None or z > sigmas
        breach = rel > threshold and beyond_spread
        row.update(relative=rel if math.isfinite(rel) else None, z=z, breach=breach, judged=True)
        rows.append(row)
        if breach:
            worse = f"{rel:.1%} worse" if math.isfinite(rel) else "worse than a zero baseline"
            spread = f", {z:.1f} sd" if z is not None else ""
            breaches.append(f"{metric} {value:.4g} is {worse} than the baseline {mean:.4g}{spread}")
    return {
        "passed": not breaches,
        "threshold": threshold,
        "sigmas": sigmas,
        "rows": rows,
        "reasons": breaches or ["Every judged metric is within the baseline."],
        "judged": sum(r["judged"] for r in rows),
    }
