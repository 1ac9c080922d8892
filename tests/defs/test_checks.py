"""The one converter from a run's checks to Dagster asset check results."""

from __future__ import annotations

import dagster as dg

from deliverydags.defs.checks import check_result, check_results, metadata_value
from deliverydags.run.checks import Check


def test_metadata_value_has_one_rule_for_nothing_and_for_lists() -> None:
    assert metadata_value(None) == dg.MetadataValue.null()
    assert metadata_value([1, 2]) == dg.MetadataValue.json([1, 2])
    assert metadata_value({"a": 1}) == dg.MetadataValue.json({"a": 1})
    assert metadata_value(0.5) == 0.5 and metadata_value("n/a") == "n/a"


def test_check_result_from_a_check_or_its_json() -> None:
    check = Check("p95_latency_ms", False, None, 100.0)
    for given in (check, check.to_json()):
        result = check_result(given)
        assert result.check_name == "p95_latency_ms" and not result.passed
        assert result.metadata["observed"] == dg.MetadataValue.null()
        assert result.metadata["limit"] == dg.MetadataValue.float(100.0)
    assert check_result(check, check_name="other").check_name == "other"


def test_check_results_one_per_name_the_later_gate_wins_a_missing_one_fails() -> None:
    checks = [
        Check("zero_loss", True, 0, 0),
        Check("zero_loss", False, 3, 0),  # a hook's check, after the ledger's
    ]
    out = check_results(checks, ["zero_loss", "service_metrics_agree"], missing="down")
    assert [(r.check_name, r.passed) for r in out] == [
        ("zero_loss", False),
        ("service_metrics_agree", False),
    ]
    assert out[0].metadata["observed"].value == 3
    assert out[1].metadata["observed"].value == "down"
    assert out[1].metadata["limit"].value == "n/a"


def test_a_warning_is_of_severity_warn() -> None:
    checks = [Check("p99_latency_ms", False, 600.0, 500.0), Check("zero_loss", False, 1, 0)]
    out = check_results(
        checks, ["p99_latency_ms", "zero_loss"], missing="-", warnings=["p99_latency_ms"]
    )
    assert [r.severity for r in out] == [dg.AssetCheckSeverity.WARN, dg.AssetCheckSeverity.ERROR]
