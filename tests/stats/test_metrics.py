"""Metrics from run results and from real k6 summaries (both layouts, k6 v1.1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deliverydags.stats.metrics import (
    K6_METRIC_NAMES,
    METRIC_NAMES,
    better,
    extract_k6_metrics,
    extract_metrics,
)

DATA = Path(__file__).parent / "data"


def result(**over) -> dict:
    doc = {
        "scenario": "message_soak",
        "rate": 500,
        "duration_s": 60,
        "counts": {
            "attempted": 30000,
            "accepted": 29900,
            "rejected": 70,
            "indeterminate": 30,
            "delivered": 29850,
            "late": 20,
            "failed": 5,
            "lost": 25,
            "recovered": 10,
            "unseen": 20,
            "duplicates": 7,
            "unexpected": 0,
            "out_of_order": 3,
            "bad_signature": 0,
        },
        "latency_ms": {"p50": 12.5, "p95": 40.0, "p99": 90.0, "max": 300.0},
        "delivery_rate": 29870 / 29900,
    }
    doc.update(over)
    return doc


def test_result_metrics_by_path() -> None:
    m = extract_metrics(result())
    assert list(m) == list(METRIC_NAMES)
    assert m["delivery_rate"] == pytest.approx(29870 / 29900, abs=1e-15)
    assert m["counts.lost"] == 25 and m["counts.duplicates"] == 7
    assert m["counts.out_of_order"] == 3 and m["counts.late"] == 20
    assert (m["latency_ms.p50"], m["latency_ms.p95"], m["latency_ms.p99"]) == (12.5, 40.0, 90.0)
    assert m["error_rate"] == pytest.approx(100 / 30000, abs=1e-15)
    assert m["throughput"] == pytest.approx(29900 / 60, abs=1e-12)


def test_undefined_metrics_are_none_not_zero() -> None:
    counts = {k: 0 for k in result()["counts"]}
    m = extract_metrics(result(counts=counts, delivery_rate=None, duration_s=0))
    assert m["delivery_rate"] is None  # nothing accepted
    assert m["error_rate"] is None  # nothing attempted
    assert m["throughput"] is None  # no duration
    assert m["counts.lost"] == 0.0
    assert extract_metrics({})["latency_ms.p95"] is None
    assert extract_metrics(result(latency_ms={"p50": True}))["latency_ms.p50"] is None


def test_directions() -> None:
    higher = {"delivery_rate", "throughput", "knee", "linear_scaling"}
    assert all(better(name) == "higher" for name in higher)
    for name in set(METRIC_NAMES) - higher:
        assert better(name) == "lower"
    with pytest.raises(KeyError):
        better("nope")


def test_k6_both_layouts_agree() -> None:
    export = json.loads((DATA / "k6_summary_export.json").read_text())
    handle = json.loads((DATA / "k6_handle_summary.json").read_text())
    a, b = extract_k6_metrics(export), extract_k6_metrics(handle)
    assert list(a) == list(K6_METRIC_NAMES)
    assert a == b
    dur = handle["metrics"]["http_req_duration"]["values"]
    assert a["latency_ms.p50"] == dur["med"]  # no p(50) in the summary: the median
    assert a["latency_ms.p95"] == dur["p(95)"] == export["metrics"]["http_req_duration"]["p(95)"]
    assert a["latency_ms.p99"] == dur["p(99)"]
    assert a["error_rate"] == 0.5 == export["metrics"]["http_req_failed"]["value"]
    assert a["throughput"] == handle["metrics"]["iterations"]["values"]["rate"]


def test_k6_default_trend_stats_have_no_p99() -> None:
    export = json.loads((DATA / "k6_summary_export_default_stats.json").read_text())
    m = extract_k6_metrics(export)
    assert m["latency_ms.p99"] is None
    assert m["latency_ms.p95"] == export["metrics"]["http_req_duration"]["p(95)"]


def test_k6_p50_preferred_over_med() -> None:
    summary = {"metrics": {"http_req_duration": {"values": {"med": 2.0, "p(50)": 1.9}}}}
    assert extract_k6_metrics(summary)["latency_ms.p50"] == 1.9
    assert extract_k6_metrics({})["error_rate"] is None


def test_the_ladders_knee_and_scaling_are_metrics_of_its_results_only() -> None:
    ladder = {"counts": {}, "knee": 5000.0, "linear_scaling": 0.97}
    got = extract_metrics(ladder)
    assert (got["knee"], got["linear_scaling"]) == (5000.0, 0.97)
    assert extract_metrics({"counts": {}})["knee"] is None  # a soak has no knee: None, not 0
