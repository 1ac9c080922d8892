"""Change points per metric, once-only reporting, staleness and the judge report."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pytest

from deliverydags.stats.history import History
from deliverydags.stats.trend import (
    detect_changes,
    judge,
    new_changes,
    replay_changes,
    stale_nights,
)

START = date(2025, 1, 1)


def days(n: int) -> list[date]:
    return [START + timedelta(days=i) for i in range(n)]


def history(columns: dict[str, np.ndarray]) -> History:
    n = len(next(iter(columns.values())))
    return History.from_array(days(n), list(columns), np.column_stack(list(columns.values())))


def stepped_latency(n: int, at: int, step: float, seed: int = 0) -> np.ndarray:
    x = 100 * np.random.default_rng(seed).lognormal(0, 0.01, n)
    x[at:] *= 1 + step
    return x


def test_ten_percent_step_found_by_both_detectors_on_the_right_night() -> None:
    h = history(
        {"latency_ms.p95": stepped_latency(120, 77, 0.10), "delivery_rate": np.full(120, 0.999)}
    )
    report = judge(h)
    (cp,) = [r for r in report["regressions"] if r["detector"] == "change_point"]
    assert cp["night"] == days(120)[77].isoformat()
    assert cp["direction"] == "worse" and cp["magnitude"] == pytest.approx(0.10, abs=0.01)
    assert cp["p_value"] == 0.01 and cp["open"]
    # A 10 % step reads as about 10 % (noise 1 %): more than 10 % on some nights, not all,
    # so the seed rule is tested with steps that clearly clear it (test_rule.py) and here
    # with a 12 % one.
    h = history({"latency_ms.p95": stepped_latency(120, 77, 0.12)})
    (rule,) = [r for r in judge(h)["regressions"] if r["detector"] == "rule"]
    assert rule["night"] == days(120)[79].isoformat()  # the 3rd night of the step
    assert rule["started"] == days(120)[77].isoformat()
    assert rule["magnitude"] == pytest.approx(0.12, abs=0.03)


def test_change_reported_once_on_the_night_it_is_confirmed() -> None:
    h = history({"latency_ms.p95": stepped_latency(70, 40, 0.15, seed=4)})
    found = replay_changes(h, start=days(70)[20])
    assert len(found) == 1
    change = found[0]
    assert change.night == days(70)[40].isoformat()
    # First found in the history ending on night 41 (two nights at the new level stand out
    # already), then in the runs of nights 42 and 43: confirmed on the third run.
    assert change.confirmed_on == days(70)[43].isoformat()
    # Nightly: tonight's job with what was reported already reports nothing new.
    assert new_changes(h, found) == []
    assert new_changes(h, [change.as_row()]) == []
    assert [c.night for c in new_changes(h, [])] == [change.night]
    # Before the third run in a row it is not confirmed yet.
    assert new_changes(h.head(43), []) == []
    assert len(new_changes(h.head(44), [])) == 1


def test_improvements_and_zero_levels() -> None:
    lat = stepped_latency(90, 50, -0.2)
    lost = np.r_[np.zeros(60), np.full(30, 5.0)]
    report = judge(history({"latency_ms.p95": lat, "counts.lost": lost}))
    (better,) = report["improvements"]
    assert better["metric"] == "latency_ms.p95" and better["direction"] == "better"
    assert better["magnitude"] == pytest.approx(-0.2, abs=0.02)
    cps = [r for r in report["regressions"] if r["detector"] == "change_point"]
    assert [(r["metric"], r["night"], r["magnitude"], r["baseline"], r["value"]) for r in cps] == [
        ("counts.lost", days(90)[60].isoformat(), None, 0.0, 5.0)
    ]
    json.dumps(report, allow_nan=False)  # inf never leaks into the report


def test_missing_nights_map_back_to_calendar_nights() -> None:
    lat = stepped_latency(100, 60, 0.2)
    lat[[10, 58, 59, 70]] = np.nan
    (change,) = detect_changes(history({"latency_ms.p95": lat}))
    assert change.night == days(100)[60].isoformat()


def test_stationary_year_raises_no_alert() -> None:
    rng = np.random.default_rng(77)
    h = history(
        {
            "delivery_rate": np.minimum(0.999 + rng.normal(0, 0.0003, 365), 1.0),
            "latency_ms.p95": 120 * rng.lognormal(0, 0.02, 365),
        }
    )
    report = judge(h)
    assert report["regressions"] == [] and report["improvements"] == []
    print(f"single-night warnings over the year (latency noise 2 %): {len(report['warnings'])}")
    assert replay_changes(h) == []  # nightly, as the job runs it: nothing either


def test_stale_nights() -> None:
    results = ["2025-01-01", "2025-01-03"]
    at = datetime(2025, 1, 4, 0, 59, tzinfo=UTC)
    assert [s["night"] for s in stale_nights(at, results)] == ["2025-01-02"]
    at = datetime(2025, 1, 4, 1, 0, tzinfo=UTC)  # 2025-01-03 is not stale: it has a result
    assert [s["night"] for s in stale_nights(at, results)] == ["2025-01-02"]
    at = datetime(2025, 1, 5, 1, 0, tzinfo=UTC)  # 25 h after 2025-01-04 began
    stale = stale_nights(at, results)
    assert stale[-1] == {
        "night": "2025-01-04",
        "due_at": "2025-01-05T01:00:00+00:00",
        "overdue_hours": 0.0,
    }
    cest = timezone(timedelta(hours=2))  # 00:59 UTC: 2025-01-04 is not due yet
    assert stale_nights(datetime(2025, 1, 5, 2, 59, tzinfo=cest), results)[-1]["night"] == (
        "2025-01-02"
    )
    assert stale_nights(at, [], first_night="2025-01-04")[0]["night"] == "2025-01-04"
    assert stale_nights(at, []) == []
    with pytest.raises(ValueError):
        stale_nights(datetime(2025, 1, 5), results)


def test_judge_report_shape_and_filters() -> None:
    lat = stepped_latency(60, 40, 0.3)
    per_night = {d: {"latency_ms.p95": v} for d, v in zip(days(60), lat, strict=True)}
    del per_night[days(60)[30]]
    h = History.from_nights(per_night, ["latency_ms.p95"])
    now = datetime.combine(days(60)[-1], datetime.min.time(), UTC) + timedelta(hours=26)
    report = judge(h, now=now)
    assert set(report) == {"regressions", "warnings", "improvements", "stale"}
    assert [s["night"] for s in report["stale"]] == [days(60)[30].isoformat()]
    for row in report["regressions"]:
        assert {"metric", "night", "detector", "direction", "magnitude", "p_value"} <= set(row)
    assert {r["detector"] for r in report["regressions"]} == {"rule", "change_point"}
    assert judge(h, since=days(60)[-1])["regressions"] == [
        r for r in report["regressions"] if r["confirmed_on"] == days(60)[-1].isoformat()
    ]
    cps = [r for r in report["regressions"] if r["detector"] == "change_point"]
    assert not [r for r in judge(h, reported=cps)["regressions"] if r["detector"] == "change_point"]


def test_history_matrix() -> None:
    h = History.from_nights(
        {"2025-01-03": {"delivery_rate": 0.99, "opt_out_rate": 0.01}, "2025-01-01": {}},
        ["delivery_rate", "opt_out_rate"],
        better_by_metric={"opt_out_rate": "lower"},
    )
    assert [d.isoformat() for d in h.nights] == ["2025-01-01", "2025-01-02", "2025-01-03"]
    assert h.has_result.tolist() == [True, False, True]
    assert np.isnan(h.values[:2]).all() and h.values[2].tolist() == [0.99, 0.01]
    assert h.worse_sign.tolist() == [-1.0, 1.0]
    assert h.upto("2025-01-02").values.shape == (2, 2)
    with pytest.raises(ValueError):
        History.from_array(["2025-01-01", "2025-01-03"], ["delivery_rate"], np.ones((2, 1)))
    with pytest.raises(KeyError):
        History.from_nights({"2025-01-01": {}}, ["opt_out_rate"])
