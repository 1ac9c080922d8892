"""Rolling delivery windows and burn-rate alerts against a direct count."""

from __future__ import annotations

import numpy as np
import pytest

from deliverydags.stats.windows import (
    BurnRule,
    burn_alerts,
    burn_rate,
    classify,
    delivery_windows,
    good_mask,
    rolling_rates,
    window_counts,
)


def test_window_counts_match_a_direct_count() -> None:
    rng = np.random.default_rng(0)
    sent = np.sort(rng.uniform(0, 7200, 5000))
    good = rng.random(5000) < 0.97
    at = np.arange(0, 7300, 37.0)
    for width in (60.0, 300.0, 3600.0):
        n, ok = window_counts(sent, good, width, at)
        inside = (sent[None, :] > at[:, None] - width) & (sent[None, :] <= at[:, None])
        np.testing.assert_array_equal(n, inside.sum(axis=1))
        np.testing.assert_array_equal(ok, (inside & good).sum(axis=1))


def test_windows_are_half_open_on_send_time() -> None:
    n, _ = window_counts(np.array([0.0, 60.0]), np.array([True, True]), 60.0, np.array([60.0]))
    assert n[0] == 1  # (0, 60]: the message sent at 0 is out, the one at 60 in


def test_deadline_makes_late_deliveries_bad() -> None:
    sent = np.array([0.0, 1.0, 2.0])
    delivered = np.array([True, True, False])
    at = np.array([10.0, 50.0, np.nan])
    assert good_mask(sent, delivered).tolist() == [True, True, False]
    assert good_mask(sent, delivered, at, deadline_s=30).tolist() == [True, False, False]
    with pytest.raises(ValueError):
        good_mask(sent, delivered, deadline_s=30)


def test_rates_and_bands() -> None:
    sent = np.arange(0, 600, 1.0)
    good = np.ones(600, dtype=bool)
    good[301:331] = False  # 30 bad messages in the minute (300, 360]
    r = rolling_rates(sent, good, {"1m": 60.0, "5m": 300.0}, step_s=60.0)
    assert r["t"][0] == 0.0 and r["t"][-1] == 600.0
    one = dict(zip(r["t"], r["1m"]["rate"], strict=True))
    assert one[360.0] == 0.5 and one[420.0] == 1.0
    assert np.isnan(rolling_rates(sent, good, {"1m": 60.0}, at=np.array([-100.0]))["1m"]["rate"][0])
    labels = classify(np.array([0.94, 0.95, 0.979, 0.98, 0.994, 0.995, np.nan]))
    assert labels.tolist() == [
        "critical",
        "warning",
        "warning",
        "target",
        "target",
        "ok",
        "no_data",
    ]
    assert burn_rate(np.array([0.995, 0.928]), 0.995) == pytest.approx([1.0, 14.4])


def traffic(hours: float, per_s: float, bad: list[tuple[float, float, float]], seed: int = 1):
    """Messages at ``per_s`` for ``hours``; ``bad`` = (start_s, end_s, failure ratio)."""
    rng = np.random.default_rng(seed)
    sent = np.arange(0, hours * 3600, 1 / per_s)
    good = np.ones(sent.size, dtype=bool)
    for start, end, ratio in bad:
        inside = (sent >= start) & (sent < end)
        good[inside] = rng.random(inside.sum()) >= ratio
    return sent, good


def test_page_needs_both_long_and_short_windows() -> None:
    # 20 % failures from 2 h to 2.5 h: burn 40 over 5 min at once, over 1 h after ~21 min.
    sent, good = traffic(4, 2, [(7200, 9000, 0.2)])
    pages = [a for a in burn_alerts(sent, good) if a["severity"] == "page"]
    assert len(pages) == 1
    page = pages[0]
    assert 7200 + 60 * 19 <= page["start"] <= 7200 + 60 * 23  # 1 h burn crosses 14.4
    # It stops within 5 min of the end, even though the 1 h window is still hot.
    assert 9000 <= page["end"] <= 9000 + 300
    assert page["peak_burn_short"] == pytest.approx(40, rel=0.25)


def test_ticket_on_a_slow_burn_and_nothing_when_healthy() -> None:
    # 4 % failures for 8 h: burn 8 > 6 over 6 h and 30 min, under 14.4 for paging.
    sent, good = traffic(10, 0.5, [(3600, 3600 * 9, 0.04)])
    severities = {a["severity"] for a in burn_alerts(sent, good)}
    assert severities == {"ticket"}
    sent, good = traffic(10, 0.5, [(0, 36000, 0.002)])
    assert burn_alerts(sent, good) == []
    custom = burn_alerts(sent, good, rules=[BurnRule("info", 600.0, 60.0, 0.1)])
    assert custom and custom[0]["severity"] == "info"


def test_report() -> None:
    sent, good = traffic(2, 1, [(1800, 2100, 0.5)])
    delivered_at = np.where(good, sent + 2.0, np.nan)
    report = delivery_windows(sent, good, delivered_at, deadline_s=30)
    assert report["messages"] == 7200 and report["good"] == int(good.sum())
    assert report["windows"]["1m"]["worst_rate"] < 0.7
    assert report["windows"]["1m"]["critical"] >= 5
    # Two hours of traffic: the 24 h window is the running total, diluted but not clean.
    assert report["windows"]["1m"]["worst_rate"] < report["windows"]["24h"]["worst_rate"] < 0.95
    assert {a["severity"] for a in report["alerts"]} == {"page", "ticket"}
