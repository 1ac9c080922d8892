"""Baseline statistics against numpy and the statistics module."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deliverydags.stats.baseline import (
    compute_baseline,
    metric_baseline,
    pinned_baseline,
    relative_change,
    rolling_baseline,
    week_before,
)


def nights(values: dict[str, float | None], metric: str = "latency_ms.p95") -> dict:
    return {night: {metric: v} for night, v in values.items()}


def test_week_before_excludes_the_night() -> None:
    assert week_before("2025-03-01") == [f"2025-02-{d}" for d in range(22, 29)]


def test_rolling_week_with_missing_nights_and_values() -> None:
    results = nights(
        {
            "2025-01-01": 100.0,
            "2025-01-02": 110.0,
            "2025-01-04": None,
            "2025-01-05": 90.0,
            "2025-01-07": 105.0,
            "2025-01-08": 500.0,
        }
    )
    base = rolling_baseline(results, "2025-01-08", ["latency_ms.p95"])
    m = base.metrics["latency_ms.p95"]
    assert base.missing == ("2025-01-03", "2025-01-06")
    assert base.present == ("2025-01-01", "2025-01-02", "2025-01-04", "2025-01-05", "2025-01-07")
    assert m.nights_without_value == ("2025-01-04",)
    values = [100.0, 110.0, 90.0, 105.0]
    assert m.n == 4
    assert m.mean == pytest.approx(statistics.fmean(values), abs=1e-12)
    assert m.std == pytest.approx(statistics.stdev(values), abs=1e-12)
    assert m.median == statistics.median(values)
    assert base.as_dict()["missing"] == ["2025-01-03", "2025-01-06"]


def test_pinned_baseline_uses_exactly_the_given_nights() -> None:
    results = nights({f"2025-01-{d:02d}": float(d) for d in range(1, 20)})
    base = pinned_baseline(results, ["2025-01-03", "2025-01-10", "2025-01-11"], ["latency_ms.p95"])
    assert base.pinned and base.metrics["latency_ms.p95"].mean == pytest.approx(8.0)
    assert base.missing == ()


def test_too_few_values() -> None:
    m = metric_baseline("x", [], "lower")
    assert (m.n, m.mean, m.std, m.median) == (0, None, None, None)
    m = metric_baseline("x", [3.0], "lower")
    assert (m.n, m.mean, m.std, m.median) == (1, 3.0, None, 3.0)


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=30))
def test_matches_numpy_and_statistics(values: list[float]) -> None:
    m = metric_baseline("x", values, "lower")
    arr = np.array(values)
    scale = max(1.0, float(np.max(np.abs(arr))))
    assert m.mean == pytest.approx(float(np.mean(arr)), abs=1e-9 * scale)
    assert m.std == pytest.approx(float(np.std(arr, ddof=1)), abs=1e-9 * scale)
    assert m.std == pytest.approx(statistics.stdev(values), abs=1e-9 * scale)
    assert m.median == pytest.approx(statistics.median(values), abs=1e-9 * scale)


def test_compute_baseline_directions() -> None:
    base = compute_baseline(
        {"2025-01-01": {"delivery_rate": 0.99}}, ["2025-01-01"], ["delivery_rate"]
    )
    assert base.metrics["delivery_rate"].better == "higher"


def test_relative_change() -> None:
    assert relative_change(110.0, 100.0, "lower") == pytest.approx(0.10)
    assert relative_change(90.0, 100.0, "lower") == pytest.approx(-0.10)
    assert relative_change(0.9, 1.0, "higher") == pytest.approx(0.10)
    assert relative_change(1.0, 0.0, "lower") == math.inf
    assert relative_change(0.0, 0.0, "lower") == 0.0
    assert relative_change(1.0, 0.0, "higher") == -math.inf
