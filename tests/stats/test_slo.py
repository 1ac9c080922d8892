"""Keptn-style SLO scoring, with the examples of Keptn's documentation style."""

from __future__ import annotations

import pytest

from deliverydags.stats.slo import Criterion, Objective, SLOConfig, aggregate, evaluate_slo

KEPTN_SLO = {
    "objectives": [
        {
            "sli": "latency_ms.p95",
            "pass": [{"criteria": ["<=+10%", "<600"]}],
            "warning": [{"criteria": ["<=800"]}],
            "weight": 1,
        },
        {"sli": "error_rate", "pass": [{"criteria": ["<=0.01"]}], "weight": 2, "key_sli": True},
        {"sli": "throughput", "pass": [{"criteria": [">=400"]}, {"criteria": [">=300", "<350"]}]},
        {"sli": "counts.duplicates"},  # informative
    ],
    "total_score": {"pass": "90%", "warning": "75%"},
    "comparison": {"aggregate_function": "avg"},
}
CONFIG = SLOConfig.from_keptn(KEPTN_SLO)


def test_all_pass() -> None:
    r = evaluate_slo(
        CONFIG,
        {"latency_ms.p95": 500, "error_rate": 0.001, "throughput": 450, "counts.duplicates": 3},
        previous=[{"latency_ms.p95": 480}],
    )
    assert r["result"] == "pass" and r["score"] == 100.0
    assert [o["status"] for o in r["objectives"]] == ["pass", "pass", "pass", "info"]


def test_warning_scores_half_weight() -> None:
    # latency 700: fails "<600" (pass), meets "<=800" (warning) -> 0.5 of weight 1.
    r = evaluate_slo(CONFIG, {"latency_ms.p95": 700, "error_rate": 0.001, "throughput": 450})
    assert r["objectives"][0]["status"] == "warning"
    assert r["score"] == pytest.approx(100 * 3.5 / 4)
    assert r["result"] == "warning"  # 87.5 %: under 90, at least 75


def test_score_bands() -> None:
    values = {"latency_ms.p95": 700, "error_rate": 0.001, "throughput": 450}
    assert evaluate_slo(CONFIG, values)["result"] == "warning"
    values = {"latency_ms.p95": 900, "error_rate": 0.001, "throughput": 200}
    r = evaluate_slo(CONFIG, values)
    assert r["score"] == 50.0 and r["result"] == "fail"


def test_or_of_criteria_sets() -> None:
    r = evaluate_slo(CONFIG, {"latency_ms.p95": 500, "error_rate": 0.001, "throughput": 320})
    assert r["objectives"][2]["status"] == "pass"


def test_key_objective_vetoes() -> None:
    r = evaluate_slo(CONFIG, {"latency_ms.p95": 500, "error_rate": 0.02, "throughput": 450})
    assert r["score"] == 50.0 and r["key_sli_failed"] and r["result"] == "fail"
    config = SLOConfig(
        (Objective.of("a", ["<1"], weight=10), Objective.of("b", ["<1"], key_sli=True))
    )
    r = evaluate_slo(config, {"a": 0, "b": 5})
    assert r["score"] == pytest.approx(100 * 10 / 11) and r["result"] == "fail"
    assert "Key objective b failed: the result is fail whatever the score." in r["reasons"]
    r = evaluate_slo(config, {"a": 0})  # a missing key SLI fails too
    assert r["result"] == "fail"


def test_relative_criteria_against_previous_values() -> None:
    values = {"latency_ms.p95": 560, "error_rate": 0.001, "throughput": 450}
    previous = [{"latency_ms.p95": 480}, {"latency_ms.p95": 520}, {"latency_ms.p95": None}]
    r = evaluate_slo(CONFIG, values, previous)  # avg 500: +10 % is 550, 560 is over
    assert r["objectives"][0]["status"] == "warning"
    target = next(t for t in r["objectives"][0]["targets"] if t["criteria"] == "<=+10%")
    assert target == {"criteria": "<=+10%", "target": pytest.approx(550.0), "violated": True}
    assert evaluate_slo(CONFIG, values)["objectives"][0]["status"] == "pass"  # no history


def test_criterion_parsing() -> None:
    c = Criterion.parse("<= -5%")
    assert (c.op, c.value, c.relative, c.percent, c.increase) == ("<=", 5.0, True, True, False)
    assert c.target(200.0) == 190.0
    c = Criterion.parse(">+20")
    assert c.relative and not c.percent and c.target(100.0) == 120.0
    assert not Criterion.parse("=0").relative
    with pytest.raises(ValueError):
        Criterion.parse("~5")


def test_keptn_percentiles() -> None:
    assert aggregate([1.0, 2.0, 3.0, 4.0], "p50") == 2.5
    assert aggregate([1.0, 2.0, 3.0, 4.0], "p90") == 4.0
    assert aggregate([10.0], "avg") == 10.0 and aggregate([], "avg") is None


def test_nothing_scored_passes() -> None:
    r = evaluate_slo(SLOConfig((Objective.of("x"),)), {"x": 1.0})
    assert (r["score"], r["result"]) == (100.0, "pass")
